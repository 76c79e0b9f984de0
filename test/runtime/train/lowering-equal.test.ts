import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { loweringNames, type LoweringOptions } from '../../../compiler/lower/kernels.js';
import { rng } from '../../../compiler/reference/random.js';
import { loweringFor } from '../../../runtime/gpu/lowering.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { labels, moeConfig, spec as moeSpec, variants } from './moe-helpers.js';

// `moec run` lowers for its adapter (on lavapipe: the subgroup matmul, grouped-expert and attention
// forms). The portable lowering's gradients are checked against finite differences (gradcheck.test.ts,
// moe-gradcheck-*.test.ts); here the adapter's lowering must give the same loss and every gradient
// element to f32 summation-order rounding. (A finite-difference check of the adapter's lowering
// itself sits at the f32 noise floor of the difference quotient: its kernels sum in another order.)

// gradcheck.test.ts' model (importing it would run its tests here too).
const tiny: Gpt2Spec = {
  name: 'lowering', layers: 2, width: 12, heads: 3, ffn: 20, vocab: 11, context: 5, dropout: 0,
  batch: 2, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};

const gpu = await testGpu();
const adapter = loweringFor(gpu);
const skip = loweringNames(adapter).length ? false : 'this adapter lowers portably: nothing else to compare';

async function lossAndGrads(s: Gpt2Spec, lowering: LoweringOptions, moe?: ReturnType<typeof moeConfig>, seed = 0) {
  const compiled = compileGpt2(s, moe ? moeBlock(s, moe) : undefined, lowering);
  const m = await GpuModel.create(gpu, compiled);
  try {
    m.initParams(7);
    const r = rng(99);
    m.writeParams((await m.readFlat('params')).map((v) => v + 0.2 * (r() - 0.5)));
    const b = rng(5);
    const n = s.batch * s.context;
    const tokens = Uint32Array.from({ length: n }, () => Math.floor(b() * s.vocab));
    const targets = Uint32Array.from({ length: n }, () => Math.floor(b() * s.vocab));
    m.gradients(tokens, targets, seed, 1, moe ? labels : undefined);
    const loss = await m.trainLoss();
    const grads = await m.readFlat('grads');
    return { loss, grads, tensors: [...compiled.layout.offsets].map(([name, offset]) => ({ name, offset, size: compiled.graph.get(name).shape.reduce((a, c) => a * c, 1) })) };
  } finally {
    m.destroy();
  }
}

async function assertSame(s: Gpt2Spec, moe?: ReturnType<typeof moeConfig>, seed = 0): Promise<void> {
  const a = await lossAndGrads(s, {}, moe, seed);
  const b = await lossAndGrads(s, adapter, moe, seed);
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * Math.abs(a.loss), `loss ${a.loss} (portable) vs ${b.loss} (${loweringNames(adapter).join(', ')})`);
  const bad: string[] = [];
  for (const t of a.tensors) {
    const ga = a.grads.subarray(t.offset, t.offset + t.size);
    const gb = b.grads.subarray(t.offset, t.offset + t.size);
    const scale = ga.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const worst = ga.reduce((m, v, i) => Math.max(m, Math.abs(v - gb[i]!)), 0);
    if (!(worst <= 2e-5 * scale + 1e-8)) bad.push(`${t.name}: max |diff| ${worst.toExponential(2)} against max |g| ${scale.toExponential(2)}`);
  }
  assert.deepEqual(bad, []);
}

test('the adapter lowering gives the portable loss and gradients: dense GPT-2 (T 5, head dim 4)', { skip }, async () => {
  await assertSame(tiny);
});

test('the adapter lowering gives the portable loss and gradients: dense GPT-2 (T 13, head dim 8, vec4 paths)', { skip }, async () => {
  await assertSame({ ...tiny, width: 16, heads: 2, ffn: 32, context: 13, vocab: 9 });
});

for (const [what, o, seed] of [variants[0]!, variants[3]!, variants[6]!, variants[7]!]) {
  test(`the adapter lowering gives the portable loss and gradients: MoE ${what}`, { skip }, async () => {
    await assertSame(moeSpec, moeConfig(o), seed ?? 0);
  });
}
