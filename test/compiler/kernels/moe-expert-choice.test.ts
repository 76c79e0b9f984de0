import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moeCombineBackwardKernel, moeCombineKernel } from '../../../compiler/kernels/moe-combine.js';
import { moeExpertChoiceDispatchKernel, moeExpertChoiceRouterKernel, moeExpertChoiceStatsKernel } from '../../../compiler/kernels/moe-expert-choice.js';
import { groupedBiasGradKernel, groupedMatmulKernel, groupedWeightGradKernel } from '../../../compiler/kernels/moe-grouped.js';
import { moeRouterBackwardKernel } from '../../../compiler/kernels/moe-router.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import {
  type ExpertActivation, combineBackwardReference, combineReference, groupedMatmulReference, groupedWeightGradReference, NO_SLOT, routerBackwardReference, statsLength, STAT,
} from '../../../compiler/reference/moe.js';
import { type ExpertChoiceShape, expertChoiceDispatchReference, expertChoiceRouterReference, expertSlots } from '../../../compiler/reference/moe-expert-choice.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';
import { close, expertBuffers } from './moe-chain.js';

// Expert-choice routing (Zhou et al. 2022): the layer's chain on the GPU against the CPU references
// on odd shapes, forward and backward: the expert-choice router, its dispatch (each expert's top c
// tokens per group, ties to the lower token) and statistics, then token choice's grouped matmuls,
// combine and router backward with one assignment per (token, expert). Repeated logit rows make ties.

interface Case extends ExpertChoiceShape { width: number; ffn: number; act: ExpertActivation; zloss: number }

async function run(c: Case) {
  const { tokens: N, experts: E, width: C, ffn: F } = c;
  const NE = N * E;
  const S = E * expertSlots(c);
  const b = new PlanBuilder('ec');
  const f32 = (name: string, n: number) => b.buffer(name, n);
  for (const n of ['logits', 'dlogits']) f32(n, NE);
  for (const n of ['pairs', 'gate', 'pos', 'kept', 'dgate']) f32(n, NE);
  f32('perm', S); f32('offsets', E + 1); b.buffer('stats', statsLength(E), 'output');
  expertBuffers(b, { tokens: N, width: C, experts: E, ffn: F, rows: S });
  const gather = { top: E };
  const route = { tokens: N, experts: E, top: E, rep: 1, mode: 'logits', score: c.score, normalize: false, salt: 0, seqLen: 1, balance: 0, zloss: c.zloss } as const;
  b.dispatch('fwd', moeExpertChoiceRouterKernel('router', c), ['logits', 'pairs', 'gate']);
  b.dispatch('fwd', moeExpertChoiceDispatchKernel('dispatch', c), ['gate', 'offsets', 'perm', 'pos', 'kept']);
  b.dispatch('fwd', moeExpertChoiceStatsKernel('stats', c), ['logits', 'gate', 'pos', 'stats']);
  b.dispatch('fwd', groupedMatmulKernel('fc', { rows: S, n: F, k: C, experts: E, gather, bias: true, activation: c.act, savePre: true }), ['x', 'W1', 'A', 'offsets', 'perm', 'b1', 'H']);
  b.dispatch('fwd', groupedMatmulKernel('proj', { rows: S, n: C, k: F, experts: E, bias: true }), ['A', 'W2', 'Y', 'offsets', 'b2']);
  b.dispatch('fwd', moeCombineKernel('combine', { tokens: N, width: C, top: E }), ['Y', 'gate', 'pos', 'out']);
  b.dispatch('bwd', moeCombineBackwardKernel('combine_bwd', { tokens: N, width: C, top: E }), ['dout', 'Y', 'gate', 'pos', 'dY', 'dgate']);
  b.dispatch('bwd', groupedWeightGradKernel('dW2', { k: F, n: C, experts: E }), ['A', 'dY', 'offsets', 'dW2']);
  b.dispatch('bwd', groupedBiasGradKernel('db2', C, E), ['dY', 'offsets', 'db2']);
  b.dispatch('bwd', groupedMatmulKernel('dH', { rows: S, n: F, k: C, experts: E, transB: true, actGrad: c.act }), ['dY', 'W2', 'dH', 'offsets', 'H']);
  b.dispatch('bwd', groupedWeightGradKernel('dW1', { k: C, n: F, experts: E, gather }), ['x', 'dH', 'offsets', 'perm', 'dW1']);
  b.dispatch('bwd', groupedBiasGradKernel('db1', F, E), ['dH', 'offsets', 'db1']);
  b.dispatch('bwd', groupedMatmulKernel('dX', { rows: S, n: C, k: F, experts: E, transB: true }), ['dH', 'W1', 'dX', 'offsets']);
  b.dispatch('bwd', moeCombineKernel('unpermute', { tokens: N, width: C, top: E }, false), ['dX', 'pos', 'dx']);
  b.dispatch('bwd', moeRouterBackwardKernel('router_bwd', route), ['logits', 'pairs', 'dgate', 'stats', 'dlogits']);

  // Every third token repeats the logits of the one before it: equal scores, ties for every expert.
  const logits = randomArray(NE, 1, 2);
  for (let n = 2; n < N; n += 3) logits.copyWithin(n * E, (n - 1) * E, n * E);
  const inp = {
    logits, x: randomArray(N * C, 2), W1: randomArray(E * C * F, 3, 0.5), b1: randomArray(E * F, 4, 0.1),
    W2: randomArray(E * F * C, 5, 0.5), b2: randomArray(E * C, 6, 0.1), dout: randomArray(N * C, 7),
    dW1: randomArray(E * C * F, 8), db1: randomArray(E * F, 9), dW2: randomArray(E * F * C, 10), db2: randomArray(E * C, 11),
  };
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    for (const [k, v] of Object.entries(inp)) ex.write(k, v);
    ex.run('fwd');
    ex.run('bwd');
    const u32 = async (n: string) => new Uint32Array(await ex.readBytes(n));
    const got: Record<string, Float32Array> = {};
    for (const n of ['gate', 'stats', 'H', 'A', 'Y', 'out', 'dY', 'dgate', 'dH', 'dX', 'dx', 'dW1', 'db1', 'dW2', 'db2', 'dlogits']) got[n] = await ex.read(n);
    const ids = { pairs: await u32('pairs'), offsets: await u32('offsets'), perm: await u32('perm'), pos: await u32('pos'), kept: await u32('kept') };
    return { inp, got, ids, route, S };
  } finally {
    ex.destroy();
  }
}

async function check(c: Case) {
  const { tokens: N, experts: E, width: C, ffn: F } = c;
  const { inp, got, ids, route, S } = await run(c);
  const r = expertChoiceRouterReference(c, inp.logits);
  assert.deepEqual(ids.pairs, r.sel, 'router: one assignment per (token, expert)');
  close('router: scores', got.gate!, r.gate);
  // The GPU's own scores decide ties, as the kernel sees them.
  const d = expertChoiceDispatchReference(c, got.gate!, inp.logits);
  assert.deepEqual(ids.offsets, d.offsets, 'dispatch: offsets e·c');
  assert.deepEqual(ids.pos, d.pos, 'dispatch: slot of each (token, expert)');
  assert.deepEqual(ids.perm, d.perm, 'dispatch: every slot filled with its assignment');
  assert.deepEqual(ids.kept, d.sel, 'dispatch: kept selections');
  close('stats', got.stats!, d.stats, 1e-5);
  const H = new Float32Array(S * F), A = new Float32Array(S * F), Y = new Float32Array(S * C);
  groupedMatmulReference({ rows: S, n: F, k: C, experts: E, gather: { top: E }, bias: true, activation: c.act }, { A: inp.x, B: inp.W1, offsets: d.offsets, perm: d.perm, bias: inp.b1, C: A, pre: H });
  close('grouped fc: pre-activation', got.H!, H);
  close('grouped fc: activation', got.A!, A);
  groupedMatmulReference({ rows: S, n: C, k: F, experts: E, bias: true }, { A: got.A!, B: inp.W2, offsets: d.offsets, bias: inp.b2, C: Y });
  close('grouped proj', got.Y!, Y);
  close('combine', got.out!, combineReference(N, C, E, got.Y!, got.gate!, d.pos));
  const dY = new Float32Array(S * C);
  const dgate = combineBackwardReference(N, C, E, inp.dout, got.Y!, got.gate!, d.pos, dY);
  close('combine backward: dY', got.dY!, dY);
  close('combine backward: dgate', got.dgate!, dgate);
  const dW2 = inp.dW2.slice(), db2 = inp.db2.slice();
  groupedWeightGradReference({ k: F, n: C, experts: E }, { A: got.A!, D: got.dY!, offsets: d.offsets, dW: dW2, db: db2 });
  close('grouped dW2 (+=)', got.dW2!, dW2);
  close('grouped db2 (+=)', got.db2!, db2);
  const dH = new Float32Array(S * F);
  groupedMatmulReference({ rows: S, n: F, k: C, experts: E, transB: true, actGrad: c.act }, { A: got.dY!, B: inp.W2, offsets: d.offsets, H: got.H!, C: dH });
  close('grouped dH', got.dH!, dH);
  const dW1 = inp.dW1.slice(), db1 = inp.db1.slice();
  groupedWeightGradReference({ k: C, n: F, experts: E, gather: { top: E } }, { A: inp.x, D: got.dH!, offsets: d.offsets, perm: d.perm, dW: dW1, db: db1 });
  close('grouped dW1 (gathered, +=)', got.dW1!, dW1);
  close('grouped db1 (+=)', got.db1!, db1);
  const dX = new Float32Array(S * C);
  groupedMatmulReference({ rows: S, n: C, k: F, experts: E, transB: true }, { A: got.dH!, B: inp.W1, offsets: d.offsets, C: dX });
  close('grouped dX', got.dX!, dX);
  close('unpermute: dx', got.dx!, combineReference(N, C, E, got.dX!, null, d.pos));
  close('router backward', got.dlogits!, routerBackwardReference(route, inp.logits, ids.pairs, got.dgate!, got.stats!), 1e-4);
  return { d, got, ids };
}

/** Per token, how many experts chose it. */
const perToken = (kept: Uint32Array, N: number, E: number) => Array.from({ length: N }, (_, n) => kept.subarray(n * E, n * E + E).filter((e) => e !== NO_SLOT).length);

test('expert choice over a micro-batch of 37 tokens, 5 experts, c = ceil(37·1/5) = 8, ties: the chain matches the references', async () => {
  const { d, ids } = await check({ tokens: 37, experts: 5, group: 37, capacity: 8, score: 'softmax', width: 13, ffn: 11, act: 'gelu', zloss: 0.01 });
  const counts = perToken(ids.kept, 37, 5);
  assert.equal(counts.reduce((a, b) => a + b, 0), 40, 'every expert takes c = 8 tokens');
  assert.ok(counts.some((k) => k === 0) && counts.some((k) => k >= 2), `tokens get zero or several experts: ${counts.join(',')}`);
  assert.ok(Math.abs(d.stats[STAT.dropped]! - counts.filter((k) => k === 0).length / 37) < 1e-7, 'dropped: tokens no expert chose');
});

test('expert choice within each sequence (5 of 7 tokens, 3 experts, c = ceil(1.3·7/3) = 4), sigmoid scores, relu experts: matches the references', async () => {
  const { ids } = await check({ tokens: 35, experts: 3, group: 7, capacity: 4, score: 'sigmoid', width: 6, ffn: 9, act: 'relu', zloss: 0 });
  for (let g = 0; g < 5; g++) for (let e = 0; e < 3; e++) {
    const taken = Array.from({ length: 7 }, (_, i) => ids.kept[(g * 7 + i) * 3 + e]).filter((k) => k !== NO_SLOT).length;
    assert.equal(taken, 4, `sequence ${g}, expert ${e}: 4 tokens of its own sequence`);
  }
});

test('expert-choice dispatch reference: ties go to the lower token; a score rank decides, not the token order', () => {
  const s: ExpertChoiceShape = { tokens: 4, experts: 2, group: 4, capacity: 2, score: 'softmax' };
  // Expert 0 scores tokens 0.1, 0.7, 0.7, 0.9; expert 1 the complements.
  const gate = Float32Array.of(0.1, 0.9, 0.7, 0.3, 0.7, 0.3, 0.9, 0.1);
  const d = expertChoiceDispatchReference(s, gate, new Float32Array(8));
  assert.deepEqual([...d.perm], [6, 2, 1, 3], 'expert 0: token 3, then token 1 (tie with 2, lower wins); expert 1: token 0, then token 1 (tie with 2)');
  assert.deepEqual([...d.sel], [NO_SLOT, 1, 0, 1, NO_SLOT, NO_SLOT, 0, NO_SLOT]);
  assert.equal(d.stats[STAT.dropped], 0.25, 'token 2 got no expert');
});
