import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { summarize } from '../../../compiler/lower/summary.js';
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
