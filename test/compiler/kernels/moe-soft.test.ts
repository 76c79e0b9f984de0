import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupedBiasGradKernel, groupedMatmulKernel, groupedWeightGradKernel } from '../../../compiler/kernels/moe-grouped.js';
import {
  moeSoftCombineBackwardKernel, moeSoftCombineKernel, moeSoftDispatchBackwardKernel, moeSoftDispatchKernel, moeSoftStatsKernel, moeSoftWeightsKernel,
} from '../../../compiler/kernels/moe-soft.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { type ExpertActivation, groupedMatmulReference, groupedWeightGradReference, STAT, statsLength } from '../../../compiler/reference/moe.js';
import {
  slotRow, softCombineBackwardReference, softCombineReference, softDims, softDispatchBackwardReference, softDispatchReference, softOffsets, type SoftShape,
  softStatsReference, softWeightsReference,
} from '../../../compiler/reference/moe-soft.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// Soft MoE (Puigcerver et al. 2023) kernels against their CPU references on odd shapes, forward
// and backward, each GPU stage fed the GPU's own upstream results; and the references' backward
// against finite differences of their forward.

const TOL = 2e-5;
const close = (what: string, got: Float32Array, want: Float32Array, tol = TOL) => {
  const err = maxRelError(got, want);
  assert.ok(err <= tol, `${what}: max relative error ${err}`);
};

async function check(s: SoftShape, F: number, act: ExpertActivation) {
  const { M, N, rows: R } = softDims(s);
  const { width: C, experts: E } = s;
  const b = new PlanBuilder('soft');
  const f32 = (name: string, n: number) => b.buffer(name, n);
  for (const n of ['logits', 'D', 'W', 'dlogits']) f32(n, N * M);
  f32('offsets', E + 1);
  b.buffer('stats', statsLength(E), 'output');
  for (const n of ['x', 'out', 'dout', 'dx']) f32(n, N * C);
  for (const n of ['Xs', 'Ys', 'dYs', 'dXs']) f32(n, R * C);
  for (const n of ['H', 'A', 'dH']) f32(n, R * F);
  for (const n of ['W1', 'dW1']) f32(n, E * C * F);
  for (const n of ['b1', 'db1']) f32(n, E * F);
  for (const n of ['W2', 'dW2']) f32(n, E * F * C);
  for (const n of ['b2', 'db2']) f32(n, E * C);
  b.dispatch('fwd', moeSoftWeightsKernel('weights', s), ['logits', 'D', 'W', 'offsets']);
  b.dispatch('fwd', moeSoftDispatchKernel('dispatch', s), ['x', 'D', 'Xs']);
  b.dispatch('fwd', groupedMatmulKernel('fc', { rows: R, n: F, k: C, experts: E, bias: true, activation: act, savePre: true }), ['Xs', 'W1', 'A', 'offsets', 'b1', 'H']);
  b.dispatch('fwd', groupedMatmulKernel('proj', { rows: R, n: C, k: F, experts: E, bias: true }), ['A', 'W2', 'Ys', 'offsets', 'b2']);
  b.dispatch('fwd', moeSoftCombineKernel('combine', s), ['Ys', 'W', 'out']);
  b.dispatch('fwd', moeSoftStatsKernel('stats', s), ['W', 'stats']);
  b.dispatch('bwd', moeSoftCombineBackwardKernel('combine_bwd', s), ['dout', 'Ys', 'W', 'dYs', 'dlogits']);
  b.dispatch('bwd', groupedWeightGradKernel('dW2', { k: F, n: C, experts: E }), ['A', 'dYs', 'offsets', 'dW2']);
  b.dispatch('bwd', groupedBiasGradKernel('db2', C, E), ['dYs', 'offsets', 'db2']);
  b.dispatch('bwd', groupedMatmulKernel('dH', { rows: R, n: F, k: C, experts: E, transB: true, actGrad: act }), ['dYs', 'W2', 'dH', 'offsets', 'H']);
  b.dispatch('bwd', groupedWeightGradKernel('dW1', { k: C, n: F, experts: E }), ['Xs', 'dH', 'offsets', 'dW1']);
  b.dispatch('bwd', groupedBiasGradKernel('db1', F, E), ['dH', 'offsets', 'db1']);
  b.dispatch('bwd', groupedMatmulKernel('dXs', { rows: R, n: C, k: F, experts: E, transB: true }), ['dH', 'W1', 'dXs', 'offsets']);
  b.dispatch('bwd', moeSoftDispatchBackwardKernel('dispatch_bwd', s), ['x', 'D', 'dXs', 'dx', 'dlogits']);
  const inp = {
    logits: randomArray(N * M, 1, 2), x: randomArray(N * C, 2), W1: randomArray(E * C * F, 3, 0.5), b1: randomArray(E * F, 4, 0.1),
    W2: randomArray(E * F * C, 5, 0.5), b2: randomArray(E * C, 6, 0.1), dout: randomArray(N * C, 7),
    dW1: randomArray(E * C * F, 8), db1: randomArray(E * F, 9), dW2: randomArray(E * F * C, 10), db2: randomArray(E * C, 11),
    // Garbage the kernels must overwrite, not add to.
    dx: randomArray(N * C, 12), dlogits: randomArray(N * M, 13), out: randomArray(N * C, 14), stats: randomArray(statsLength(E), 15),
  };
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    for (const [k, v] of Object.entries(inp)) ex.write(k, v);
    ex.run('fwd');
    ex.run('bwd');
    const r = async (n: string) => ex.read(n);
    const got = {
      D: await r('D'), W: await r('W'), offsets: new Uint32Array(await ex.readBytes('offsets')), Xs: await r('Xs'), H: await r('H'), A: await r('A'), Ys: await r('Ys'),
      out: await r('out'), stats: await r('stats'), dYs: await r('dYs'), dlogits: await r('dlogits'), dW2: await r('dW2'), db2: await r('db2'), dH: await r('dH'),
      dW1: await r('dW1'), db1: await r('db1'), dXs: await r('dXs'), dx: await r('dx'),
    };
    const w = softWeightsReference(s, inp.logits);
    close('dispatch weights D (softmax over tokens)', got.D, w.D);
    close('combine weights W (softmax over slots)', got.W, w.W);
    assert.deepEqual(got.offsets, softOffsets(s), 'expert offsets of the slot rows');
    for (let bb = 0; bb < s.seqs; bb++) for (let j = 0; j < M; j++) {
      let sum = 0;
      for (let t = 0; t < s.seqLen; t++) sum += got.D[(bb * s.seqLen + t) * M + j]!;
      assert.ok(Math.abs(sum - 1) < 1e-5, `D column (${bb}, ${j}) sums to ${sum}`);
    }
    close('slot inputs Xs = Dᵀ·X', got.Xs, softDispatchReference(s, inp.x, got.D));
    const H = new Float32Array(R * F), A = new Float32Array(R * F), Ys = new Float32Array(R * C);
    const offsets = softOffsets(s);
    groupedMatmulReference({ rows: R, n: F, k: C, experts: E, bias: true, activation: act }, { A: got.Xs, B: inp.W1, offsets, bias: inp.b1, C: A, pre: H });
    close('expert c_fc pre-activation', got.H, H);
    close('expert c_fc activation', got.A, A);
    groupedMatmulReference({ rows: R, n: C, k: F, experts: E, bias: true }, { A: got.A, B: inp.W2, offsets, bias: inp.b2, C: Ys });
    close('expert c_proj', got.Ys, Ys);
    close('combine Y = W·Ỹ', got.out, softCombineReference(s, got.Ys, got.W));
    const stats = softStatsReference(s, got.W);
    close('stats', got.stats, stats, 1e-5);
    const counts = got.stats.subarray(STAT.counts, STAT.counts + E).reduce((a, v) => a + v, 0);
    assert.ok(Math.abs(counts - N) < 1e-3 * N, `combine weight per expert sums to the tokens: ${counts}`);
    assert.deepEqual([got.stats[STAT.balance], got.stats[STAT.z], got.stats[STAT.dropped]], [0, 0, 0]);
    assert.ok(got.stats[STAT.entropy]! > 0 && got.stats[STAT.entropy]! <= Math.log(E) + 1e-5);

    const cb = softCombineBackwardReference(s, inp.dout, got.Ys, got.W);
    close('combine backward: dỸ', got.dYs, cb.dYs);
    const dW2 = inp.dW2.slice(), db2 = inp.db2.slice();
    groupedWeightGradReference({ k: F, n: C, experts: E }, { A: got.A, D: got.dYs, offsets, dW: dW2, db: db2 });
    close('expert dW2 (+=)', got.dW2, dW2);
    close('expert db2 (+=)', got.db2, db2);
    const dH = new Float32Array(R * F);
    groupedMatmulReference({ rows: R, n: F, k: C, experts: E, transB: true, actGrad: act }, { A: got.dYs, B: inp.W2, offsets, H: got.H, C: dH });
    close('expert dH', got.dH, dH);
    const dW1 = inp.dW1.slice(), db1 = inp.db1.slice();
    groupedWeightGradReference({ k: C, n: F, experts: E }, { A: got.Xs, D: got.dH, offsets, dW: dW1, db: db1 });
    close('expert dW1 (+=)', got.dW1, dW1);
    close('expert db1 (+=)', got.db1, db1);
    const dXs = new Float32Array(R * C);
    groupedMatmulReference({ rows: R, n: C, k: F, experts: E, transB: true }, { A: got.dH, B: inp.W1, offsets, C: dXs });
    close('expert dX̃', got.dXs, dXs);
    // dlogits: the combine softmax's gradient (written) plus the dispatch softmax's (added).
    const db = softDispatchBackwardReference(s, inp.x, got.D, got.dXs, cb.dlogits);
    close('dispatch backward: dx', got.dx, db.dx);
    close('combine + dispatch backward: dlogits', got.dlogits, db.dlogits, 1e-4);
  } finally {
    ex.destroy();
  }
}

test('Soft MoE kernels, 2 sequences of 7, width 13, 3 experts x 2 slots, GELU experts (ffn 11): match the references', async () => {
  await check({ seqs: 2, seqLen: 7, width: 13, experts: 3, slots: 2, }, 11, 'gelu');
});

test('Soft MoE kernels, 3 sequences of 5, width 9, 5 experts x 1 slot, cubic experts (ffn 6): match the references', async () => {
  await check({ seqs: 3, seqLen: 5, width: 9, experts: 5, slots: 1 }, 6, 'cubic');
});

test('Soft MoE kernels, vec4 widths (width 20, ffn 24), 1 sequence of 33, 2 experts x 3 slots, ReLU: match the references', async () => {
  await check({ seqs: 1, seqLen: 33, width: 20, experts: 2, slots: 3 }, 24, 'relu');
});

test("Soft MoE references: the backward matches finite differences of the forward (linear experts)", () => {
  const s: SoftShape = { seqs: 2, seqLen: 5, width: 3, experts: 3, slots: 2 };
  const { M, N, rows: R } = softDims(s);
  const C = s.width;
  const logits = randomArray(N * M, 21, 1.5);
  const x = randomArray(N * C, 22);
  const Wl = randomArray(s.experts * C * C, 23);
  const G = randomArray(N * C, 24);
  const expert = (Xs: Float32Array, transpose: boolean) => {
    const Y = new Float32Array(R * C);
    for (let r = 0; r < R; r++) {
      const e = Math.floor(r / (s.seqs * s.slots));
      for (let c = 0; c < C; c++) for (let k = 0; k < C; k++) Y[r * C + c]! += Xs[r * C + k]! * Wl[e * C * C + (transpose ? c * C + k : k * C + c)]!;
    }
    return Y;
  };
  const loss = (l: Float32Array, xx: Float32Array) => {
    const w = softWeightsReference(s, l);
    const out = softCombineReference(s, expert(softDispatchReference(s, xx, w.D), false), w.W);
    return out.reduce((a, v, i) => a + v * G[i]!, 0);
  };
  const w = softWeightsReference(s, logits);
  const Xs = softDispatchReference(s, x, w.D);
  const cb = softCombineBackwardReference(s, G, expert(Xs, false), w.W);
  const dXs = expert(cb.dYs, true);
  const { dx, dlogits } = softDispatchBackwardReference(s, x, w.D, dXs, cb.dlogits);
  const h = 1e-2;
  const fd = (arr: Float32Array, i: number, f: () => number) => {
    const v = arr[i]!;
    arr[i] = v + h; const up = f();
    arr[i] = v - h; const down = f();
    arr[i] = v;
    return (up - down) / (2 * h);
  };
  for (let i = 0; i < N * M; i++) {
    const want = fd(logits, i, () => loss(logits, x));
    assert.ok(Math.abs(dlogits[i]! - want) <= 2e-2 * Math.abs(want) + 2e-4, `dlogits[${i}]: ${dlogits[i]} vs ${want}`);
  }
  for (let i = 0; i < N * C; i++) {
    const want = fd(x, i, () => loss(logits, x));
    assert.ok(Math.abs(dx[i]! - want) <= 2e-2 * Math.abs(want) + 2e-4, `dx[${i}] (dispatch path): ${dx[i]} vs ${want}`);
  }
  // The slot layout: each expert's slots of every sequence are one span of rows.
  assert.deepEqual(Array.from({ length: M }, (_, j) => slotRow(s, 1, j)), [2, 3, 6, 7, 10, 11]);
});

test('Soft MoE kernels wrap a grid past 65535 workgroups into y (dispatch, 75000 one-invocation workgroups)', async () => {
  const s: SoftShape = { seqs: 1, seqLen: 3, width: 300, experts: 125, slots: 2 };
  const { M, N, rows: R } = softDims(s);
  const k = moeSoftDispatchKernel('dispatch', s, 1);
  assert.deepEqual(k.workgroups, [37500, 2, 1]);
  const b = new PlanBuilder('wrap');
  b.buffer('x', N * s.width); b.buffer('D', N * M); b.buffer('Xs', R * s.width);
  b.dispatch('run', k, ['x', 'D', 'Xs']);
  const x = randomArray(N * s.width, 1), D = randomArray(N * M, 2);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    ex.write('x', x); ex.write('D', D);
    ex.run('run');
    close('dispatch on a wrapped grid', await ex.read('Xs'), softDispatchReference(s, x, D));
  } finally {
    ex.destroy();
  }
});
