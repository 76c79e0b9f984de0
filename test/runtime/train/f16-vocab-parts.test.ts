import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { compileGpt2, type CompiledTrial } from '../../../compiler/lower/compile.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { fitFor } from '../../../compiler/lower/fit.js';
import { defaultLimits, limitProblems } from '../../../compiler/lower/summary.js';

// precision f16 with wte (and the tied head) cut into vocabulary parts: each part has its own f16
// copy in its own parameter region's f16 mirror, and the head's f16 matmuls read one part each. A
// 16 KiB binding limit (a tiny maxStorageBufferBindingSize) cuts the 200 × 32 wte into 2 parts of
// 100 rows in different regions. The same weights give the loss of the f16 model with a whole wte
// (the parts change only the logsumexp's summation order), within f16 rounding of the f32 model.

const spec: Gpt2Spec = {
  name: 'f16-parts', layers: 1, width: 32, heads: 2, ffn: 64, vocab: 200, context: 16, dropout: 0,
  batch: 4, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0, precision: 'f16',
};
const LIMIT = { maxRegionBytes: 16384 };

function pattern(s: Gpt2Spec) {
  const n = s.batch * s.context;
  const seq = (i: number) => (i * 5 + 3) % 11;
  return { tokens: Uint32Array.from({ length: n }, (_, i) => seq(i)), targets: Uint32Array.from({ length: n }, (_, i) => seq(i + 1)) };
}

const relNorm = (a: Float32Array, b: Float32Array) => {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i]! - b[i]!) ** 2; n += b[i]! ** 2; }
  return Math.sqrt(d) / (Math.sqrt(n) + 1e-12);
};

test('precision f16 with the vocabulary in parts: an f16 copy per part, in its part\'s region, and no copy of the whole wte', () => {
  const c = compileGpt2(spec, undefined, {}, LIMIT);
  assert.match(c.graph.notes.join('\n'), /cut over the vocabulary: 2 parts of 100 rows/);
  const copies = c.plan.buffers.filter((b) => /^wte\.weight\..*f16$/.test(b.name));
  assert.deepEqual(copies.map((b) => b.name), ['wte.weight.rows0_100.f16', 'wte.weight.rows100_200.f16']);
  const regionOf = (name: string) => c.plan.buffers.find((b) => b.name === name)!.region;
  // Each copy mirrors its part's parameter region (params.k -> params16.k).
  for (const [part, copy] of [['wte.weight.rows0_100', copies[0]!], ['wte.weight.rows100_200', copies[1]!]] as const) {
    assert.equal(copy.region, regionOf(part)!.replace(/^params/, 'params16'), `${copy.name} lies in its part's f16 mirror`);
    assert.equal(copy.bytes, 100 * 32 * 2);
  }
  assert.notEqual(copies[0]!.region, copies[1]!.region, 'the parts lie in different parameter regions');
  // The head's matmuls read the f16 copies, one part each, forward and backward.
  const head = c.plan.programs.train_step!.filter((d) => /^lm_head\./.test(d.label ?? ''));
  assert.ok(head.length >= 8);
  for (const d of head.filter((x) => !/\.dW\./.test(x.label ?? ''))) assert.ok(d.buffers.some((b) => /\.f16$/.test(b)), `${d.label} reads an f16 part`);
  assert.ok(c.plan.kernels.some((k) => k.features?.includes('shader-f16')));
});

async function lossAndGrads(c: CompiledTrial, then?: (m: GpuModel) => Promise<void>) {
  const m = await GpuModel.create(await testGpu(), c);
  try {
    m.initParams(5);
    const b = pattern(c.spec);
    m.gradients(b.tokens, b.targets);
    const r = { loss: await m.trainLoss(), grads: await m.readGrads() };
    await then?.(m);
    return r;
  } finally {
    m.destroy();
  }
}

test('precision f16 with the vocabulary in parts: loss and gradients equal the whole-vocabulary f16 model\'s, within f16 rounding of f32, and it learns', async () => {
  // Then training updates the parameters and refreshes each part's f16 copy: the loss falls.
  const losses: number[] = [];
  const parted = await lossAndGrads(compileGpt2(spec, undefined, {}, LIMIT), async (m) => {
    m.initParams(1);
    const b = pattern(spec);
    for (let step = 1; step <= 100; step++) {
      m.trainStep(step, 3e-3, 1, [b]);
      if (step === 1 || step % 25 === 0) losses.push(await m.trainLoss());
    }
  });
  const whole = await lossAndGrads(compileGpt2(spec));
  const f32 = await lossAndGrads(compileGpt2({ ...spec, precision: 'f32' }, undefined, {}, LIMIT));
  assert.ok(Math.abs(parted.loss - whole.loss) / whole.loss < 1e-5, `loss f16 parted ${parted.loss}, f16 whole ${whole.loss}`);
  assert.ok(Math.abs(parted.loss - f32.loss) / f32.loss < 1e-2 && parted.loss !== f32.loss, `loss f16 ${parted.loss}, f32 ${f32.loss}`);
  for (const [name, g] of whole.grads) {
    assert.ok(relNorm(parted.grads.get(name)!, g) < 1e-3, `${name}: parted vs whole f16 ‖Δg‖/‖g‖ = ${relNorm(parted.grads.get(name)!, g)}`);
    assert.ok(relNorm(parted.grads.get(name)!, f32.grads.get(name)!) < 5e-2, `${name}: f16 vs f32 ‖Δg‖/‖g‖ = ${relNorm(parted.grads.get(name)!, f32.grads.get(name)!)}`);
  }
  assert.ok(losses[0]! > 4 && losses.at(-1)! < 0.1, `losses ${losses.map((l) => l.toFixed(4)).join(' ')}`);
});

test("precision f16 at GPT-2 small's vocabulary and width (50257 × 768) fits WebGPU's default limits: wte and its f16 copy in 2 parts", () => {
  const s: Gpt2Spec = { ...spec, name: 'gpt2-f16', layers: 1, width: 768, heads: 12, ffn: 3072, vocab: 50257, context: 64, batch: 2 };
  const c = compileGpt2(s, undefined, {}, fitFor(defaultLimits));
  assert.match(c.graph.notes.join('\n'), /2 parts of 25129 rows/);
  assert.deepEqual(c.plan.buffers.filter((b) => /^wte\.weight\..*f16$/.test(b.name)).map((b) => b.bytes), [25129 * 768 * 2, 25128 * 768 * 2]);
  assert.deepEqual(limitProblems(c, { ...defaultLimits, features: new Set(['shader-f16']) }).map((p) => p.message), []);
});
