// The whole MoE layer chain on the GPU against the CPU references, for any router mode: shared by
// the MoE kernel tests (a rule router's input comes from its plug-in, compiler/routing).
import assert from 'node:assert/strict';
import { moeCombineBackwardKernel, moeCombineKernel } from '../../../compiler/kernels/moe-combine.js';
import { moeDispatchKernel } from '../../../compiler/kernels/moe-dispatch.js';
import { groupedBiasGradKernel, groupedMatmulKernel, groupedWeightGradKernel } from '../../../compiler/kernels/moe-grouped.js';
import { moeRouterBackwardKernel } from '../../../compiler/kernels/moe-router.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { routerForwardKernel, routerReference, ruleRouter } from '../../../compiler/routing/index.js';
import { dropoutUniforms } from '../../../compiler/reference/dropout.js';
import {
  type ExpertActivation, combineBackwardReference, combineReference, groupedMatmulReference, groupedWeightGradReference, type MoeRouterShape, moeDispatchReference,
  routerBackwardReference, routingRows, statsLength,
} from '../../../compiler/reference/moe.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// The whole MoE layer chain, kernel by kernel, against the CPU references on odd shapes: router,
// dispatch (with and without dropping), grouped expert matmuls, combine, and every backward kernel.
// Each GPU stage is fed the GPU's own upstream results, so a mismatch points at one kernel.

export interface Case extends MoeRouterShape {
  act?: ExpertActivation;
  width: number;
  ffn: number;
  capacity: number;
  balance: number;
  zloss: number;
}

export const TOL = 2e-5;

export const close = (what: string, got: Float32Array, want: Float32Array, tol = TOL) => {
  const err = maxRelError(got, want);
  assert.ok(err <= tol, `${what}: max relative error ${err}`);
};

/** The experts' buffers of an MoE layer chain: tokens × width in and out, E experts' MLP weights, `rows` slot rows. */
export function expertBuffers(b: PlanBuilder, s: { tokens: number; width: number; experts: number; ffn: number; rows: number }): void {
  const { tokens: N, width: C, experts: E, ffn: F, rows: R } = s;
  for (const n of ['x', 'out', 'dout', 'dx']) b.buffer(n, N * C);
  for (const n of ['W1', 'dW1']) b.buffer(n, E * C * F);
  for (const n of ['b1', 'db1']) b.buffer(n, E * F);
  for (const n of ['W2', 'dW2']) b.buffer(n, E * F * C);
  for (const n of ['b2', 'db2']) b.buffer(n, E * C);
  for (const n of ['H', 'A', 'dH']) b.buffer(n, R * F);
  for (const n of ['Y', 'dY', 'dX']) b.buffer(n, R * C);
}

export async function runCase(c: Case) {
  const { tokens: N, width: C, experts: E, top: K, ffn: F } = c;
  const R = routingRows(c);
  const NK = N * K;
  const routing = { tokens: N, experts: E, top: K, rep: c.rep };
  const b = new PlanBuilder('moe');
  const f32 = (name: string, n: number) => b.buffer(name, n);
  f32('logits', R * E); f32('labels', N / c.seqLen); f32('tokens', N); b.buffer('rng', 4, 'uniform');
  for (const n of ['sel', 'gate', 'pos', 'perm', 'dgate']) f32(n, NK);
  f32('offsets', E + 1); b.buffer('stats', statsLength(E), 'output');
  expertBuffers(b, { tokens: N, width: C, experts: E, ffn: F, rows: NK });
  f32('dlogits', R * E);
  const logitsMode = c.mode === 'logits';
  const routerIn = c.mode === 'logits' ? ['logits', ...(c.sampled && c.top > 1 ? ['rng'] : [])] : [ruleRouter(c.mode).input];
  b.dispatch('fwd', routerForwardKernel('router', c), [...routerIn, 'sel', 'gate']);
  b.dispatch('fwd', moeDispatchKernel('dispatch', { ...routing, capacity: c.capacity, logits: logitsMode, score: c.score }), ['sel', ...(logitsMode ? ['logits'] : []), 'offsets', 'perm', 'pos', 'stats']);
  b.dispatch('fwd', groupedMatmulKernel('fc', { rows: NK, n: F, k: C, experts: E, gather: { top: K }, bias: true, activation: c.act ?? 'gelu', savePre: true }), ['x', 'W1', 'A', 'offsets', 'perm', 'b1', 'H']);
  b.dispatch('fwd', groupedMatmulKernel('proj', { rows: NK, n: C, k: F, experts: E, bias: true }), ['A', 'W2', 'Y', 'offsets', 'b2']);
  b.dispatch('fwd', moeCombineKernel('combine', { tokens: N, width: C, top: K }), ['Y', 'gate', 'pos', 'out']);
  b.dispatch('bwd', moeCombineBackwardKernel('combine_bwd', { tokens: N, width: C, top: K }), ['dout', 'Y', 'gate', 'pos', 'dY', 'dgate']);
  b.dispatch('bwd', groupedWeightGradKernel('dW2', { k: F, n: C, experts: E }), ['A', 'dY', 'offsets', 'dW2']);
  b.dispatch('bwd', groupedBiasGradKernel('db2', C, E), ['dY', 'offsets', 'db2']);
  b.dispatch('bwd', groupedMatmulKernel('dH', { rows: NK, n: F, k: C, experts: E, transB: true, actGrad: c.act ?? 'gelu' }), ['dY', 'W2', 'dH', 'offsets', 'H']);
  b.dispatch('bwd', groupedWeightGradKernel('dW1', { k: C, n: F, experts: E, gather: { top: K } }), ['x', 'dH', 'offsets', 'perm', 'dW1']);
  b.dispatch('bwd', groupedBiasGradKernel('db1', F, E), ['dH', 'offsets', 'db1']);
  b.dispatch('bwd', groupedMatmulKernel('dX', { rows: NK, n: C, k: F, experts: E, transB: true }), ['dH', 'W1', 'dX', 'offsets']);
  b.dispatch('bwd', moeCombineKernel('unpermute', { tokens: N, width: C, top: K }, false), ['dX', 'pos', 'dx']);
  if (logitsMode) b.dispatch('bwd', moeRouterBackwardKernel('router_bwd', c), ['logits', 'sel', 'dgate', 'stats', 'dlogits']);

  const inp = {
    logits: randomArray(R * E, 1, 2), x: randomArray(N * C, 2), W1: randomArray(E * C * F, 3, 0.5), b1: randomArray(E * F, 4, 0.1),
    W2: randomArray(E * F * C, 5, 0.5), b2: randomArray(E * C, 6, 0.1), dout: randomArray(N * C, 7),
    dW1: randomArray(E * C * F, 8), db1: randomArray(E * F, 9), dW2: randomArray(E * F * C, 10), db2: randomArray(E * C, 11),
  };
  const labels = Uint32Array.from({ length: N / c.seqLen }, (_, i) => (i * 7 + 3) % 11);
  // Token ids from a GPT-2-sized vocabulary, each id used by several positions.
  const tokens = Uint32Array.from({ length: N }, (_, i) => ((i % 13) * 7919 + 17) % 50257);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    for (const [k, v] of Object.entries(inp)) ex.write(k, v);
    ex.write('labels', labels);
    ex.write('tokens', tokens);
    ex.write('rng', dropoutUniforms(77, 5, true));
    ex.run('fwd');
    ex.run('bwd');
    const u32 = async (n: string) => new Uint32Array(await ex.readBytes(n));
    const got = {
      sel: await u32('sel'), gate: await ex.read('gate'), offsets: await u32('offsets'), perm: await u32('perm'), pos: await u32('pos'),
      stats: await ex.read('stats'), H: await ex.read('H'), A: await ex.read('A'), Y: await ex.read('Y'), out: await ex.read('out'),
      dY: await ex.read('dY'), dgate: await ex.read('dgate'), dH: await ex.read('dH'), dX: await ex.read('dX'), dx: await ex.read('dx'),
      dW1: await ex.read('dW1'), db1: await ex.read('db1'), dW2: await ex.read('dW2'), db2: await ex.read('db2'), dlogits: await ex.read('dlogits'),
    };
    return { inp, labels, tokens, got };
  } finally {
    ex.destroy();
  }
}

export async function check(c: Case) {
  const { tokens: N, width: C, experts: E, top: K, ffn: F } = c;
  const NK = N * K;
  const { inp, labels, tokens, got } = await runCase(c);
  const r = routerReference(c, { logits: inp.logits, labels, tokens, seed: 77, step: 5, train: true });
  assert.deepEqual(got.sel, r.sel, 'router: selected experts');
  close('router: gates', got.gate, r.gate);
  const d = moeDispatchReference({ ...c }, got.sel, c.mode === 'logits' ? inp.logits : null);
  assert.deepEqual(got.offsets, d.offsets, 'dispatch: offsets');
  assert.deepEqual(got.pos, d.pos, 'dispatch: slot of each assignment');
  const S = d.offsets[E]!;
  assert.deepEqual(got.perm.subarray(0, S), d.perm.subarray(0, S), 'dispatch: assignment of each slot');
  close('dispatch: stats', got.stats, d.stats, 1e-5);
  // Only the kept slots are defined; compare rows < S.
  const rows = (a: Float32Array, w: number) => a.subarray(0, S * w);
  const H = new Float32Array(NK * F), A = new Float32Array(NK * F), Y = new Float32Array(NK * C);
  groupedMatmulReference({ rows: NK, n: F, k: C, experts: E, gather: { top: K }, bias: true, activation: c.act ?? 'gelu' }, { A: inp.x, B: inp.W1, offsets: d.offsets, perm: d.perm, bias: inp.b1, C: A, pre: H });
  close('grouped fc: pre-activation', rows(got.H, F), rows(H, F));
  close('grouped fc: activation', rows(got.A, F), rows(A, F));
  groupedMatmulReference({ rows: NK, n: C, k: F, experts: E, bias: true }, { A: got.A, B: inp.W2, offsets: d.offsets, bias: inp.b2, C: Y });
  close('grouped proj', rows(got.Y, C), rows(Y, C));
  close('combine', got.out, combineReference(N, C, K, got.Y, got.gate, d.pos));
  const dY = new Float32Array(NK * C);
  const dgate = combineBackwardReference(N, C, K, inp.dout, got.Y, got.gate, d.pos, dY);
  close('combine backward: dY', rows(got.dY, C), rows(dY, C));
  close('combine backward: dgate', got.dgate, dgate);
  const dW2 = inp.dW2.slice(), db2 = inp.db2.slice();
  groupedWeightGradReference({ k: F, n: C, experts: E }, { A: got.A, D: got.dY, offsets: d.offsets, dW: dW2, db: db2 });
  close('grouped dW2 (+=)', got.dW2, dW2);
  close('grouped db2 (+=)', got.db2, db2);
  const dH = new Float32Array(NK * F);
  groupedMatmulReference({ rows: NK, n: F, k: C, experts: E, transB: true, actGrad: c.act ?? 'gelu' }, { A: got.dY, B: inp.W2, offsets: d.offsets, H: got.H, C: dH });
  close('grouped dH (transB, activation backward)', rows(got.dH, F), rows(dH, F));
  const dW1 = inp.dW1.slice(), db1 = inp.db1.slice();
  groupedWeightGradReference({ k: C, n: F, experts: E, gather: { top: K } }, { A: inp.x, D: got.dH, offsets: d.offsets, perm: d.perm, dW: dW1, db: db1 });
  close('grouped dW1 (gathered, +=)', got.dW1, dW1);
  close('grouped db1 (+=)', got.db1, db1);
  const dX = new Float32Array(NK * C);
  groupedMatmulReference({ rows: NK, n: C, k: F, experts: E, transB: true }, { A: got.dH, B: inp.W1, offsets: d.offsets, C: dX });
  close('grouped dX', rows(got.dX, C), rows(dX, C));
  close('unpermute: dx', got.dx, combineReference(N, C, K, got.dX, null, d.pos));
  if (c.mode === 'logits') close('router backward', got.dlogits, routerBackwardReference(c, inp.logits, got.sel, got.dgate, got.stats), 1e-4);
  return { d, got, inp, tokens };
}
