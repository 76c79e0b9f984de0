import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { defaultLimits, limitProblems, summarize } from '../../../compiler/lower/summary.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { adamwUniforms } from '../../../compiler/kernels/adamw.js';
import { CLIP_EPS } from '../../../compiler/kernels/gradnorm.js';
import { adamwReference } from '../../../compiler/reference/adamw.js';
import { maxRelError } from '../../../compiler/reference/random.js';
import { testGpu } from '../../helpers/gpu.js';

const spec: Gpt2Spec = {
  name: 'pattern', layers: 2, width: 32, heads: 2, ffn: 64, vocab: 16, context: 16, dropout: 0,
  batch: 4, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};

/** A repeating pattern: every next token is determined by the current one. */
function pattern(s: Gpt2Spec) {
  const n = s.batch * s.context;
  const seq = (i: number) => (i * 5 + 3) % 11;
  return { tokens: Uint32Array.from({ length: n }, (_, i) => seq(i)), targets: Uint32Array.from({ length: n }, (_, i) => seq(i + 1)) };
}

async function train(s: Gpt2Spec, steps: number, lr: number, seed = 1): Promise<number[]> {
  const m = await GpuModel.create(await testGpu(), compileGpt2(s));
  try {
    m.initParams(seed);
    const b = pattern(s);
    const micro = Array.from({ length: s.accumulate }, () => b);
    const losses: number[] = [];
    for (let step = 1; step <= steps; step++) {
      m.trainStep(step, lr, seed, micro);
      if (step === 1 || step % 25 === 0) losses.push(await m.trainLoss());
    }
    return losses;
  } finally {
    m.destroy();
  }
}

test('a 2-layer model drives the loss on a repeating pattern close to zero', async () => {
  const losses = await train(spec, 150, 3e-3);
  assert.ok(losses[0]! > 2, `initial loss ${losses[0]} should be near ln(16) = 2.77`);
  assert.ok(losses.at(-1)! < 0.01, `final loss ${losses.at(-1)} (history ${losses.map((l) => l.toFixed(4)).join(' ')})`);
});

test('the same seed gives bit-identical losses; another seed does not', async () => {
  const s = { ...spec, dropout: 0.1, clip: 1 };
  const a = await train(s, 50, 3e-3, 3);
  const b = await train(s, 50, 3e-3, 3);
  const c = await train(s, 50, 3e-3, 4);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('gradient accumulation over two half batches equals one full batch', async () => {
  // The pattern batch is the same in both micro-batches, so the mean of two equals one batch of it.
  const one = await train(spec, 25, 3e-3);
  const two = await train({ ...spec, accumulate: 2 }, 25, 3e-3);
  for (let i = 0; i < one.length; i++) assert.ok(Math.abs(one[i]! - two[i]!) < 1e-4, `step losses ${one} vs ${two}`);
});

test('the update clips by the global gradient norm: grad_norm is the norm of the gradients and AdamW sees clipped ones', async () => {
  const s = { ...spec, clip: 0.05 };
  const c = compileGpt2(s);
  const m = await GpuModel.create(await testGpu(), c);
  try {
    m.initParams(2);
    const b = pattern(s);
    m.gradients(b.tokens, b.targets);
    const before = await m.readFlat('params');
    const grads = await m.readFlat('grads');
    const norm = Math.sqrt(grads.reduce((a, g) => a + g * g, 0));
    m.ex.write('adam', adamwUniforms(1, 1e-2, { beta1: 0.9, beta2: 0.95 }));
    m.ex.run('update');
    const [sumsq] = await m.ex.read('grad_norm');
    assert.ok(Math.abs(Math.sqrt(sumsq!) - norm) <= 1e-4 * norm, `GPU norm ${Math.sqrt(sumsq!)} vs ${norm}`);
    assert.ok(norm > s.clip, `the test needs a norm above the clip (${norm})`);
    const clipped = grads.map((g) => g * (s.clip / (norm + CLIP_EPS)));
    const ref = before.slice();
    const mm = new Float32Array(ref.length);
    const vv = new Float32Array(ref.length);
    for (const r of c.layout.ranges) adamwReference(ref, clipped, mm, vv, 1, 1e-2, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: r.decay ? s.wd : 0 }, r.offset, r.count);
    assert.ok(maxRelError(await m.readFlat('params'), ref) < 1e-5);
  } finally {
    m.destroy();
  }
});

test('optimizer sgd: one step is p − lr·(g + wd·p) on decayed tensors and p − lr·g on the rest', async () => {
  const s: Gpt2Spec = { ...spec, optimizer: 'sgd', wd: 0.1 };
  const c = compileGpt2(s);
  assert.ok(!c.plan.buffers.some((b) => b.name === 'adam.m'), 'SGD keeps no moments');
  const m = await GpuModel.create(await testGpu(), c);
  try {
    m.initParams(3);
    const before = await m.readFlat('params');
    const b = pattern(s);
    m.gradients(b.tokens, b.targets);
    const g = await m.readFlat('grads');
    m.trainStep(1, 0.05, 0, [b]);
    const after = await m.readFlat('params');
    const want = before.slice();
    for (const r of c.layout.ranges) for (let i = r.offset; i < r.offset + r.count; i++) want[i] = before[i]! - 0.05 * (g[i]! + (r.decay ? 0.1 : 0) * before[i]!);
    assert.ok(maxRelError(after, want) < 1e-5, `max rel error ${maxRelError(after, want)}`);
  } finally {
    m.destroy();
  }
});

test("the executor allocates what the plan's peak-memory estimate says, to 16-byte rounding", async () => {
  const c = compileGpt2(spec);
  const m = await GpuModel.create(await testGpu(), c);
  try {
    const peak = summarize(c).peakBytes;
    const { plan, staging } = m.ex.allocatedBytes();
    assert.ok(plan >= peak && plan - peak < 16 * c.plan.buffers.length, `allocated ${plan}, plan estimate ${peak}`);
    assert.equal(staging, 0, 'nothing read back yet');
    await m.trainLoss();
    assert.equal(m.ex.allocatedBytes().staging, 4, 'one staging buffer, for the 4-byte loss');
  } finally {
    m.destroy();
  }
});

test('precision f16: loss and gradients within f16 rounding of the f32 model, and it learns the pattern', async () => {
  const s16: Gpt2Spec = { ...spec, precision: 'f16' };
  const c16 = compileGpt2(s16);
  assert.ok(c16.plan.kernels.some((k) => k.features?.includes('shader-f16')), 'f16 weights are stored as f16');
  assert.ok(c16.plan.buffers.some((b) => b.name === 'h.0.mlp.c_fc.weight.f16' && b.region === 'params16'));
  const m32 = await GpuModel.create(await testGpu(), compileGpt2(spec));
  const m16 = await GpuModel.create(await testGpu(), c16);
  try {
    const b = pattern(spec);
    m32.initParams(5);
    m16.initParams(5);
    m32.gradients(b.tokens, b.targets);
    m16.gradients(b.tokens, b.targets);
    const [l32, l16] = [await m32.trainLoss(), await m16.trainLoss()];
    assert.ok(Math.abs(l16 - l32) / l32 < 1e-2 && l16 !== l32, `loss f32 ${l32}, f16 ${l16}`);
    const [g32, g16] = [await m32.readGrads(), await m16.readGrads()];
    for (const [name, g] of g32) {
      const h = g16.get(name)!;
      let d = 0;
      let n = 0;
      for (let i = 0; i < g.length; i++) { d += (g[i]! - h[i]!) ** 2; n += g[i]! ** 2; }
      assert.ok(Math.sqrt(d) <= 5e-2 * Math.sqrt(n) + 1e-7, `${name}: ‖Δg‖/‖g‖ = ${Math.sqrt(d / n)}`);
    }
  } finally {
    m32.destroy();
    m16.destroy();
  }
  const losses = await train(s16, 150, 3e-3);
  assert.ok(losses.at(-1)! < 0.02, `f16 final loss ${losses.at(-1)} (history ${losses.map((l) => l.toFixed(4)).join(' ')})`);
});

test('precision f16 is refused where it cannot run: an adapter without shader-f16, and MoE layers', () => {
  const c16 = compileGpt2({ ...spec, precision: 'f16' });
  const p = limitProblems(c16, { ...defaultLimits, features: new Set(['timestamp-query']) });
  assert.equal(p[0]?.ptr, '/train/precision');
  assert.match(p[0]!.message, /needs the WebGPU feature 'shader-f16', which this adapter lacks/);
  assert.deepEqual(limitProblems(c16, { ...defaultLimits, features: new Set(['shader-f16']) }), []);
  assert.deepEqual(limitProblems(compileGpt2(spec), { ...defaultLimits, features: new Set() }), [], 'f32 plans need no feature');
});
