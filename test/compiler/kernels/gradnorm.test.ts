import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adamwClipKernel, adamwKernel, adamwUniforms, defaultAdamW } from '../../../compiler/kernels/adamw.js';
import { clipFactor, gradNormKernels, gradSumSquaresReference, type GradNormShape } from '../../../compiler/kernels/gradnorm.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { adamwReference } from '../../../compiler/reference/adamw.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

/** A plan computing the norm of `grads` and, with maxNorm, one clipped AdamW step over it. */
function plan(s: GradNormShape, maxNorm?: number) {
  const { count } = s;
  const k = gradNormKernels('gnorm', s);
  const b = new PlanBuilder('gradnorm');
  for (const n of ['params', 'grads', 'm', 'v']) b.buffer(n, count, n === 'grads' ? 'grad' : n === 'params' ? 'param' : 'optimizer');
  b.buffer('partials', k.partials);
  b.buffer('norm', 2);
  b.buffer('step', 4, 'uniform');
  b.dispatch('norm', k.partial, ['grads', 'partials']);
  b.dispatch('norm', k.total, ['partials', 'norm']);
  if (maxNorm !== undefined) {
    const adam = adamwClipKernel('adamw_clip', { count }, defaultAdamW, maxNorm, 64, s.maxGroupsX);
    b.dispatch('update', adam, maxNorm > 0 ? ['params', 'grads', 'm', 'v', 'step', 'norm'] : ['params', 'grads', 'm', 'v', 'step']);
  }
  return b.build();
}

async function norm(s: GradNormShape, grads: Float32Array): Promise<Float32Array> {
  const ex = await PlanExecutor.create(await testGpu(), plan(s));
  try {
    ex.write('grads', grads);
    ex.run('norm');
    return await ex.read('norm');
  } finally {
    ex.destroy();
  }
}

for (const s of [
  { count: 1 },
  { count: 1000, wg: 64, perInvocation: 3 },
  { count: 70_001 },
  // 64·4 = 256 elements per group: 274 groups spill into a 5 × 55 grid.
  { count: 70_001, wg: 64, perInvocation: 4, maxGroupsX: 5 },
] satisfies GradNormShape[]) {
  test(`gradient norm ${JSON.stringify(s)}`, async () => {
    const g = randomArray(s.count, 41, 2);
    const [sumsq, n] = await norm(s, g);
    const ref = gradSumSquaresReference(g);
    assert.ok(Math.abs(sumsq! - ref) / ref <= 1e-5, `sumsq ${sumsq} vs ${ref}`);
    assert.ok(Math.abs(n! - Math.sqrt(ref)) / Math.sqrt(ref) <= 1e-5, `norm ${n} vs ${Math.sqrt(ref)}`);
  });
}

test('gradient norm grid spills into y at the given point and covers every element', () => {
  const k = gradNormKernels('g', { count: 70_001, wg: 64, perInvocation: 4, maxGroupsX: 5 });
  assert.equal(k.partials, 274);
  assert.deepEqual(k.partial.workgroups, [5, 55, 1]);
  const big = gradNormKernels('g', { count: 124_475_904 * 40 });
  assert.ok(big.partial.workgroups[0] <= 65535 && big.partial.workgroups[0] * big.partial.workgroups[1] * 256 * 16 >= 124_475_904 * 40);
  assert.throws(() => gradNormKernels('g', { count: 0 }), /count=0/);
  assert.throws(() => adamwClipKernel('a', { count: 4 }, defaultAdamW, -1), /maxNorm=-1/);
});

test('gradient norm is bit-identical across runs', async () => {
  const s = { count: 50_003, wg: 64 };
  const g = randomArray(s.count, 42, 3);
  const a = await norm(s, g);
  const b = await norm(s, g);
  assert.deepEqual([...a], [...b]);
});

/** One clipped AdamW step on GPU vs reference; returns the error and the clip factor the reference used. */
async function clippedStep(s: GradNormShape, gradScale: number, maxNorm: number): Promise<{ err: number; clip: number; unclippedErr: number }> {
  const { count } = s;
  const ex = await PlanExecutor.create(await testGpu(), plan(s, maxNorm));
  try {
    const p = randomArray(count, 51);
    const g = randomArray(count, 52, gradScale);
    ex.write('params', p);
    ex.write('grads', g);
    // A step > 1 with nonzero moments is sensitive to the gradient's scale (step 1 is not: m/√v).
    const m0 = randomArray(count, 53, 0.1);
    const v0 = randomArray(count, 54, 0.01).map(Math.abs);
    ex.write('m', m0);
    ex.write('v', v0);
    ex.write('step', adamwUniforms(3, 1e-2, defaultAdamW));
    ex.run('norm');
    ex.run('update');
    const got = await ex.read('params');
    const clip = clipFactor(gradSumSquaresReference(g), maxNorm);
    const expect = (scale: number) => {
      const pr = p.slice();
      adamwReference(pr, g.map((x) => x * scale), m0.slice(), v0.slice(), 3, 1e-2, defaultAdamW);
      return pr;
    };
    return { err: maxRelError(got, expect(clip)), clip, unclippedErr: maxRelError(got, expect(1)) };
  } finally {
    ex.destroy();
  }
}

for (const s of [{ count: 1001 }, { count: 1001, wg: 64, perInvocation: 2, maxGroupsX: 3 }] satisfies GradNormShape[]) {
  test(`clipped adamw ${JSON.stringify(s)}: clips above maxNorm, not below`, async () => {
    // ‖g‖ ≈ 3 · √(1001/3) ≈ 55: clipped to 1 (factor ≈ 0.02); with maxNorm 100 nothing changes.
    const above = await clippedStep(s, 3, 1);
    assert.ok(above.clip < 0.05, `clip ${above.clip}`);
    assert.ok(above.err <= 1e-4, `clipped error ${above.err}`);
    assert.ok(above.unclippedErr > 1e-3, `clipping had no visible effect (${above.unclippedErr})`);
    const below = await clippedStep(s, 3, 100);
    assert.equal(below.clip, 1);
    assert.ok(below.err <= 1e-4, `unclipped error ${below.err}`);
  });
}

test('clipped adamw with maxNorm 0 is plain adamw and binds no norm', async () => {
  const plain = adamwKernel('a', { count: 1001 }, defaultAdamW, 64);
  const off = adamwClipKernel('a', { count: 1001 }, defaultAdamW, 0, 64);
  assert.deepEqual(off, plain);
  assert.equal(adamwClipKernel('a', { count: 1001 }, defaultAdamW, 1, 64).bindings.at(-1)?.name, 'norm');
  const r = await clippedStep({ count: 1001 }, 3, 0);
  assert.equal(r.clip, 1);
  assert.ok(r.err <= 1e-4, `error ${r.err}`);
});
