import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { moeBiasName, moeStatsName } from '../../../compiler/graph/moe-outputs.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { STAT } from '../../../compiler/reference/moe.js';
import { rng } from '../../../compiler/reference/random.js';
import { checkpointTensors, restoreTensors } from '../../../runtime/train/checkpoint.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { gradCheck, moeConfig } from './moe-helpers.js';

// Auxiliary-loss-free balancing on the GPU: on a router skewed toward expert 0 the bias moves load
// toward balance (and without it the load stays skewed); a checkpointed and resumed run continues
// bit for bit; the gradients of a biased model still match finite differences.

const spec: Gpt2Spec = {
  name: 'moe-bias', layers: 2, width: 12, heads: 3, ffn: 10, vocab: 11, context: 5, dropout: 0,
  batch: 4, accumulate: 2, betas: [0.9, 0.95], eps: 1e-8, wd: 0.1, clip: 1,
};
const E = 4;
const skewedMoe = (biasRate: number): MoeConfig => moeConfig({ experts: E, top: 1, balance: 0, zloss: 0, dropless: true, layers: [0, 1], biasRate });

function microBatches(step: number) {
  const r = rng(1000 + step);
  const n = spec.batch * spec.context;
  return Array.from({ length: spec.accumulate }, () => ({
    tokens: Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab)),
    targets: Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab)),
  }));
}

/**
 * A model whose routers favour expert 0: ln_2's bias 1 and router column 0 raised by 0.1, so logit 0
 * gains about 0.1·width on every token; the router weights are scaled up (×15) so the scores spread
 * over tokens, and a bias of rate γ moves tokens at the margin rather than all at once.
 */
async function skewedModel(moe: MoeConfig): Promise<GpuModel> {
  const compiled = compileGpt2(spec, moeBlock(spec, moe));
  const m = await GpuModel.create(await testGpu(), compiled);
  m.initParams(3);
  const flat = await m.readFlat('params');
  for (const l of moe.layers) {
    const ln = compiled.layout.offsets.get(`h.${l}.ln_2.bias`)!;
    flat.fill(1, ln, ln + spec.width);
    const w = compiled.layout.offsets.get(`h.${l}.mlp.router.weight`)!;
    for (let i = 0; i < spec.width * E; i++) flat[w + i]! *= 15;
    for (let c = 0; c < spec.width; c++) flat[w + c * E]! += 0.1;
  }
  m.writeParams(flat);
  return m;
}

/** max load / mean load of the last micro-batch, per routing layer. */
async function overload(m: GpuModel, moe: MoeConfig): Promise<number[]> {
  const out: number[] = [];
  for (const l of moe.layers) {
    const counts = (await m.ex.read(moeStatsName(l))).subarray(STAT.counts, STAT.counts + E);
    out.push(Math.max(...counts) / (counts.reduce((a, b) => a + b, 0) / E));
  }
  return out;
}

test('the routing bias moves a skewed router toward balance; without it the load stays on one expert', async () => {
  const run = async (biasRate: number) => {
    const moe = skewedMoe(biasRate);
    const m = await skewedModel(moe);
    try {
      const first = await (async () => { m.trainStep(1, 3e-3, 1, microBatches(1)); return overload(m, moe); })();
      const late: number[] = [];
      for (let step = 2; step <= 16; step++) {
        m.trainStep(step, 3e-3, 1, microBatches(step));
        if (step > 8) late.push(...(await overload(m, moe)));
      }
      const bias = biasRate > 0 ? await m.ex.read(moeBiasName(1)) : null;
      return { first, late: late.reduce((a, b) => a + b, 0) / late.length, bias };
    } finally {
      m.destroy();
    }
  };
  const off = await run(0);
  const on = await run(0.05);
  console.log(`# max/mean load over steps 9-16: bias-rate 0: ${off.late.toFixed(2)}, bias-rate 0.05: ${on.late.toFixed(2)}`);
  assert.deepEqual(on.first, off.first, 'the first step routes alike (the bias starts at 0)');
  assert.ok(Math.max(...off.first) >= 3, `the router starts skewed (max/mean load per layer ${off.first}; ${E} is all on one expert)`);
  assert.ok(off.late > 3, `without the bias the load stays skewed (mean max/mean load over steps 9-16: ${off.late})`);
  assert.ok(on.late < 2.5 && on.late < off.late - 0.7, `with the bias the load moves toward balance (mean max/mean load over steps 9-16: ${on.late}, without: ${off.late})`);
  assert.ok(on.bias![0]! < 0 && on.bias!.slice(1).some((b) => b > 0), `layer 1 (the most skewed): the overloaded expert's bias falls, others rise: ${on.bias}`);
});

test('a run checkpointed at step 4 and resumed in a fresh model continues bit for bit: losses and routing biases', async () => {
  const moe = skewedMoe(0.05);
  const steps = 8;
  const a = await skewedModel(moe);
  const lossesA: number[] = [];
  let saved: Awaited<ReturnType<typeof checkpointTensors>>;
  let biasesA: Float32Array[];
  try {
    for (let step = 1; step <= steps; step++) {
      a.trainStep(step, 3e-3, 1, microBatches(step));
      lossesA.push(await a.trainLoss());
      if (step === 4) saved = await checkpointTensors(a);
    }
    biasesA = await Promise.all(moe.layers.map((l) => a.ex.read(moeBiasName(l))));
  } finally {
    a.destroy();
  }
  for (const l of moe.layers) {
    const b = saved!.get(`state.${moeBiasName(l)}`);
    assert.ok(b && b.data.some((v) => v !== 0), `the checkpoint holds layer ${l}'s nonzero routing bias`);
  }
  const b = await GpuModel.create(await testGpu(), compileGpt2(spec, moeBlock(spec, moe)));
  try {
    b.initParams(99);
    restoreTensors(b, saved!, 'step-4');
    const lossesB: number[] = [];
    for (let step = 5; step <= steps; step++) {
      b.trainStep(step, 3e-3, 1, microBatches(step));
      lossesB.push(await b.trainLoss());
    }
    assert.deepEqual(lossesB, lossesA.slice(4), 'losses after the resume equal the uninterrupted run');
    for (const [i, l] of moe.layers.entries()) assert.deepEqual(await b.ex.read(moeBiasName(l)), biasesA![i], `layer ${l}'s bias`);
    assert.throws(() => restoreTensors(b, new Map([...saved!].filter(([n]) => !n.startsWith('state.'))), 'old.safetensors'), /no tensor 'state\.h0\.moe\.route_bias'/);
  } finally {
    b.destroy();
  }
});

test('finite-difference gradients of a tiny model with a nonzero routing bias (top 2 of 3, balance and z-loss)', async () => {
  // A bias of the scores' size, so that it decides some tokens' second expert.
  const moe = moeConfig({ biasRate: 0.02 });
  const { failures, checked } = await gradCheck(moe, 0, 1, (m) => moe.layers.forEach((l, i) => m.ex.write(moeBiasName(l), Float32Array.from([0.15, -0.1, 0.05].map((v) => v * (i + 1))))));
  assert.ok(checked > 20, `checked ${checked}`);
  assert.deepEqual(failures, []);
});
