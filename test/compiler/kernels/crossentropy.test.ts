import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  crossEntropyBackwardKernel, crossEntropyForwardKernel, crossEntropyMeanKernel, IGNORE_INDEX, type CrossEntropyShape,
} from '../../../compiler/kernels/crossentropy.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { crossEntropyBackwardReference, crossEntropyForwardReference } from '../../../compiler/reference/crossentropy.js';
import { maxRelError, randomArray, rng } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

const tol = 1e-4;

function plan(s: CrossEntropyShape, inPlace: boolean, gradScale: number) {
  const { N, V } = s;
  const b = new PlanBuilder('crossentropy');
  b.buffer('logits', N * V, 'activation');
  b.buffer('targets', N, 'input');
  b.buffer('losses', N, 'activation');
  b.buffer('meanOut', 2, 'output');
  b.dispatch('fwd', crossEntropyForwardKernel('ce_fwd', s), ['logits', 'targets', 'losses']);
  b.dispatch('fwd', crossEntropyMeanKernel('ce_mean', s, gradScale), ['losses', 'targets', 'meanOut']);
  if (inPlace) {
    b.dispatch('bwd', crossEntropyBackwardKernel('ce_bwd', s), ['logits', 'targets', 'meanOut']);
  } else {
    b.buffer('dlogits', N * V, 'grad');
    b.dispatch('bwd', crossEntropyBackwardKernel('ce_bwd', s, false), ['logits', 'targets', 'meanOut', 'dlogits']);
  }
  return b.build();
}

function targetsFor(N: number, V: number, seed: number): Uint32Array {
  const r = rng(seed);
  // Every third row ignored; targets include the first and last logit.
  return Uint32Array.from({ length: N }, (_, n) => (n % 3 === 1 ? IGNORE_INDEX : n % 5 === 0 ? V - 1 : n % 7 === 0 ? 0 : Math.floor(r() * V)));
}

interface Errors { losses: number; mean: number; scale: number; grad: number; untouched: number }

async function check(s: CrossEntropyShape, inPlace: boolean, gradScale = 1, perturb?: (l: Float32Array) => void, raw?: Float32Array[]): Promise<Errors> {
  const { N, V } = s;
  // Large logits, so a kernel that skipped the max subtraction would overflow exp.
  const logits = randomArray(N * V, 21, 8).map((v, i) => v + 50 * (Math.floor(i / V) % 2));
  const targets = targetsFor(N, V, 22);
  const ex = await PlanExecutor.create(await testGpu(), plan(s, inPlace, gradScale));
  try {
    const lg = logits.slice();
    perturb?.(lg);
    ex.write('logits', lg);
    ex.write('targets', targets);
    ex.run('fwd');
    const losses = await ex.read('losses');
    const meanOut = await ex.read('meanOut');
    ex.run('bwd');
    const grad = await ex.read(inPlace ? 'logits' : 'dlogits');
    raw?.push(losses, meanOut, grad);
    const f = crossEntropyForwardReference(N, V, logits, targets);
    const scale = gradScale / Math.max(1, f.count);
    const ref = crossEntropyBackwardReference(N, V, logits, targets, scale);
    // Gradients are O(1/N): compare relative to the largest magnitude rather than to 1.
    const gmax = ref.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    let gerr = 0;
    for (let i = 0; i < ref.length; i++) gerr = Math.max(gerr, Math.abs(grad[i]! - ref[i]!) / gmax);
    return {
      losses: maxRelError(losses, f.losses),
      mean: maxRelError(meanOut.subarray(0, 1), new Float32Array([f.mean])),
      scale: Math.abs(meanOut[1]! - scale) / scale,
      grad: Number.isNaN(gerr) ? Infinity : gerr,
      untouched: inPlace ? 0 : maxRelError(await ex.read('logits'), lg),
    };
  } finally {
    ex.destroy();
  }
}

const shapes: Array<[CrossEntropyShape, boolean, number]> = [
  [{ N: 7, V: 37 }, true, 1],
  [{ N: 33, V: 130 }, false, 0.5],
  [{ N: 5, V: 1000, wg: 64 }, true, 1],
  [{ N: 4, V: 50257 }, false, 1], // GPT-2 vocabulary
  // One invocation per row: rows not a multiple of the workgroup, V odd, tiny, vec4 and not.
  [{ N: 7, V: 37, perRow: 'invocation' }, true, 1],
  [{ N: 70, V: 5, perRow: 'invocation' }, false, 0.5],
  [{ N: 70, V: 5, perRow: 'invocation' }, true, 1],
  [{ N: 65, V: 300, perRow: 'invocation' }, true, 1],
  [{ N: 65, V: 300, perRow: 'invocation' }, false, 1],
  [{ N: 33, V: 2, perRow: 'invocation', wg: 8 }, false, 1],
  [{ N: 3, V: 4096, perRow: 'invocation' }, true, 2],
];
for (const [s, inPlace, gs] of shapes) {
  test(`crossentropy N=${s.N} V=${s.V} inPlace=${inPlace} gradScale=${gs}${s.perRow ? ` perRow=${s.perRow}` : ''}`, async () => {
    const e = await check(s, inPlace, gs);
    for (const [k, v] of Object.entries(e)) assert.ok(v <= tol, `${k} error ${v}`);
  });
}

test('reference crossentropy: uniform logits give log V, and the gradient sums to zero', () => {
  const V = 10;
  const f = crossEntropyForwardReference(2, V, new Float32Array(2 * V), new Uint32Array([3, IGNORE_INDEX]));
  assert.ok(Math.abs(f.losses[0]! - Math.log(V)) < 1e-6);
  assert.equal(f.losses[1], 0);
  assert.equal(f.count, 1);
  const logits = randomArray(2 * V, 5);
  const d = crossEntropyBackwardReference(2, V, logits, new Uint32Array([3, IGNORE_INDEX]), 1);
  assert.ok(Math.abs(d.subarray(0, V).reduce((a, v) => a + v, 0)) < 1e-6);
  assert.ok(d[3]! < 0);
  assert.ok(d.subarray(V).every((v) => v === 0));
  // Finite difference of the loss in one logit.
  const h = 1e-2;
  const lp = logits.slice(); lp[6]! += h;
  const lm = logits.slice(); lm[6]! -= h;
  const t = new Uint32Array([3, IGNORE_INDEX]);
  const fd = (crossEntropyForwardReference(2, V, lp, t).losses[0]! - crossEntropyForwardReference(2, V, lm, t).losses[0]!) / (2 * h);
  assert.ok(Math.abs(fd - d[6]!) < 1e-3);
});

test('a perturbed logit is caught by the crossentropy check (the test can fail)', async () => {
  const e = await check({ N: 7, V: 37 }, false, 1, (l) => { l[0]! += 3; });
  assert.ok(e.losses > tol && e.grad > tol, JSON.stringify(e));
});

test('a perturbed logit is caught by the per-invocation crossentropy check', async () => {
  const e = await check({ N: 65, V: 300, perRow: 'invocation' }, false, 1, (l) => { l[5]! += 40; });
  assert.ok(e.losses > tol && e.grad > tol, JSON.stringify(e));
});

test('per-invocation crossentropy is bit-deterministic', async () => {
  for (const inPlace of [true, false]) {
    const a: Float32Array[] = [];
    const b: Float32Array[] = [];
    await check({ N: 65, V: 300, perRow: 'invocation' }, inPlace, 1, undefined, a);
    await check({ N: 65, V: 300, perRow: 'invocation' }, inPlace, 1, undefined, b);
    a.forEach((x, i) => assert.deepEqual(x, b[i]));
  }
});
