import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moeCombineBackwardKernel, moeCombineKernel } from '../../../compiler/kernels/moe-combine.js';
import { moeDispatchKernel } from '../../../compiler/kernels/moe-dispatch.js';
import { groupedBiasGradKernel, groupedMatmulKernel, groupedWeightGradKernel } from '../../../compiler/kernels/moe-grouped.js';
import { moeCosineForwardKernel, moePoolBackwardKernel, moePoolForwardKernel, moeRouterBackwardKernel, moeRouterForwardKernel, moeRouterNoiseKernel } from '../../../compiler/kernels/moe-router.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { routerForwardKernel, routerReference } from '../../../compiler/routing/index.js';
import { dropoutUniforms } from '../../../compiler/reference/dropout.js';
import {
  type ExpertActivation, combineBackwardReference, cosineLogitsReference, combineReference, groupedMatmulReference, groupedWeightGradReference, type MoeRouterShape, moeDispatchReference,
  moeRouterReference, NO_SLOT, poolReference, routerBackwardReference, routerNoiseReference, routingRows, statsLength,
} from '../../../compiler/reference/moe.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// The whole MoE layer chain, kernel by kernel, against the CPU references on odd shapes: router,
// dispatch (with and without dropping), grouped expert matmuls, combine, and every backward kernel.
// Each GPU stage is fed the GPU's own upstream results, so a mismatch points at one kernel.

interface Case extends MoeRouterShape {
  act?: ExpertActivation;
  width: number;
  ffn: number;
  capacity: number;
  balance: number;
  zloss: number;
}

const TOL = 2e-5;

const close = (what: string, got: Float32Array, want: Float32Array, tol = TOL) => {
  const err = maxRelError(got, want);
  assert.ok(err <= tol, `${what}: max relative error ${err}`);
};

async function runCase(c: Case) {
  const { tokens: N, width: C, experts: E, top: K, ffn: F } = c;
  const R = routingRows(c);
  const NK = N * K;
  const routing = { tokens: N, experts: E, top: K, rep: c.rep };
  const b = new PlanBuilder('moe');
  const f32 = (name: string, n: number) => b.buffer(name, n);
  f32('logits', R * E); f32('labels', N / c.seqLen); b.buffer('rng', 4, 'uniform');
  for (const n of ['sel', 'gate', 'pos', 'perm', 'dgate']) f32(n, NK);
  f32('offsets', E + 1); b.buffer('stats', statsLength(E), 'output');
  for (const n of ['x', 'out', 'dout', 'dx']) f32(n, N * C);
  for (const n of ['W1', 'dW1']) f32(n, E * C * F);
  for (const n of ['b1', 'db1']) f32(n, E * F);
  for (const n of ['W2', 'dW2']) f32(n, E * F * C);
  for (const n of ['b2', 'db2']) f32(n, E * C);
  for (const n of ['H', 'A', 'dH']) f32(n, NK * F);
  for (const n of ['Y', 'dY', 'dX']) f32(n, NK * C);
  f32('dlogits', R * E);
  const logitsMode = c.mode === 'logits';
  const routerIn = c.mode === 'logits' ? ['logits', ...(c.sampled && c.top > 1 ? ['rng'] : [])] : c.mode === 'random' ? ['rng'] : ['labels'];
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
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    for (const [k, v] of Object.entries(inp)) ex.write(k, v);
    ex.write('labels', labels);
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
    return { inp, labels, got };
  } finally {
    ex.destroy();
  }
}

async function check(c: Case) {
  const { tokens: N, width: C, experts: E, top: K, ffn: F } = c;
  const NK = N * K;
  const { inp, labels, got } = await runCase(c);
  const r = routerReference(c, { logits: inp.logits, labels, seed: 77, step: 5, train: true });
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
  return { d, got, inp };
}

const base = { mode: 'logits', score: 'softmax', normalize: false, salt: 3, seqLen: 1, rep: 1, balance: 0.3, zloss: 0.05 } as const;

test('MoE kernels, token routing, softmax-topk, dropless: match the references', async () => {
  const { d } = await check({ ...base, tokens: 37, width: 13, experts: 5, top: 2, ffn: 19, capacity: 74 });
  assert.equal(d.offsets[5], 74, 'dropless keeps every assignment');
});

test('MoE kernels, GShard sampled second expert: draws match the reference and differ from plain top-2', async () => {
  const c = { ...base, sampled: true, tokens: 37, width: 13, experts: 5, top: 2, ffn: 19, capacity: 74 };
  const { got, inp } = await check(c);
  const top = moeRouterReference({ ...c, sampled: false }, { logits: inp.logits });
  assert.deepEqual(got.sel.filter((_, a) => a % 2 === 0), top.sel.filter((_, a) => a % 2 === 0), 'first choices are the top-1');
  assert.notDeepEqual(got.sel, top.sel, 'some second choices are sampled away from the runner-up');
});

test('MoE kernels, vec4 operands, several row and column tiles per expert: match the references', async () => {
  const { d } = await check({ ...base, normalize: true, tokens: 101, width: 68, experts: 3, top: 2, ffn: 72, capacity: 202 });
  assert.ok(d.offsets[1]! > 64 || d.offsets[2]! - d.offsets[1]! > 64 || d.offsets[3]! - d.offsets[2]! > 64, 'some expert spans two row tiles');
});

test('MoE kernels, capacity 6 drops assignments (dropped: no slot, no gradient); ReLU experts', async () => {
  const { d, got } = await check({ ...base, act: 'relu', normalize: true, tokens: 37, width: 13, experts: 5, top: 2, ffn: 19, capacity: 6 });
  assert.equal(d.offsets[5], 30);
  for (let a = 0; a < 74; a++) if (d.pos[a] === NO_SLOT) assert.equal(got.dgate[a], 0);
  // First choices take precedence: an expert chosen first by at least 6 tokens holds only first choices.
  for (let e = 0; e < 5; e++) {
    const firsts = [...got.sel].filter((x, a) => a % 2 === 0 && x === e).length;
    if (firsts < 6) continue;
    for (let s = d.offsets[e]!; s < d.offsets[e + 1]!; s++) assert.equal(d.perm[s]! % 2, 0, `slot ${s} of expert ${e} holds a second choice`);
  }
});

test('MoE kernels, sequence routing (one decision per 6 tokens), sigmoid gates renormalised, top 3 of 4 sampled after the first (GShard); cubic experts', async () => {
  const { got } = await check({ ...base, act: 'cubic', sampled: true, score: 'sigmoid', normalize: true, rep: 6, seqLen: 6, tokens: 30, width: 9, experts: 4, top: 3, ffn: 11, capacity: 90 });
  for (let n = 0; n < 30; n++) assert.deepEqual(got.sel.subarray(3 * n, 3 * n + 3), got.sel.subarray(3 * Math.floor(n / 6) * 6, 3 * Math.floor(n / 6) * 6 + 3));
});

test('MoE kernels, random router: K distinct experts from the seeded hash, bit for bit; label router: label + k mod E', async () => {
  const { got } = await check({ ...base, mode: 'random', tokens: 41, width: 5, experts: 7, top: 3, ffn: 6, capacity: 123 });
  for (let n = 0; n < 41; n++) assert.equal(new Set(got.sel.subarray(3 * n, 3 * n + 3)).size, 3);
  const label = await check({ ...base, mode: 'label', seqLen: 4, tokens: 20, width: 5, experts: 3, top: 2, ffn: 6, capacity: 40 });
  // Labels 3, 10, 6, 2, 9: first experts label mod 3, second ones the next expert.
  assert.deepEqual([...label.got.sel].filter((_, a) => a % 8 < 2), [0, 1, 1, 2, 0, 1, 2, 0, 0, 1]);
});

test('sequence pooling (prefix) forward and backward match the reference', async () => {
  const s = { tokens: 21, seqLen: 7, width: 5, prefix: 3 };
  const b = new PlanBuilder('pool');
  b.buffer('x', 105); b.buffer('pooled', 15); b.buffer('dp', 15); b.buffer('dx', 105);
  b.dispatch('run', moePoolForwardKernel('pool', s), ['x', 'pooled']);
  b.dispatch('run', moePoolBackwardKernel('pool_bwd', s), ['dp', 'dx']);
  const x = randomArray(105, 1), dp = randomArray(15, 2), dx = randomArray(105, 3);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    ex.write('x', x); ex.write('dp', dp); ex.write('dx', dx);
    ex.run('run');
    close('pool', await ex.read('pooled'), poolReference(21, 7, 5, 3, x));
    const want = dx.slice();
    for (let n = 0; n < 21; n++) if (n % 7 < 3) for (let c = 0; c < 5; c++) want[n * 5 + c]! += dp[Math.floor(n / 7) * 5 + c]! / 3;
    close('pool backward (+=)', await ex.read('dx'), want);
  } finally {
    ex.destroy();
  }
});

test('cosine router logits match the reference (the backward: moe-gradcheck-routers.test.ts)', async () => {
  const s = { rows: 13, dim: 5, experts: 3 };
  const b = new PlanBuilder('cosine');
  b.buffer('P', 65); b.buffer('emb', 15); b.buffer('ls', 1); b.buffer('logits', 39);
  b.dispatch('run', moeCosineForwardKernel('cos', s), ['P', 'emb', 'ls', 'logits']);
  const P = randomArray(65, 1), emb = randomArray(15, 2);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    ex.write('P', P); ex.write('emb', emb); ex.write('ls', new Float32Array([0.7]));
    ex.run('run');
    const got = await ex.read('logits');
    close('cosine logits', got, cosineLogitsReference(13, 5, 3, P, emb, 0.7), 1e-5);
    assert.ok(got.every((v) => Math.abs(v) <= Math.exp(0.7) + 1e-5), 'bounded by the scale');
  } finally {
    ex.destroy();
  }
});

for (const dist of ['gaussian', 'uniform'] as const) {
  test(`router noise: seeded ${dist} noise on the logits while training, none in evaluation`, async () => {
    const b = new PlanBuilder('noise');
    b.buffer('logits', 23); b.buffer('rng', 4, 'uniform');
    b.dispatch('run', moeRouterNoiseKernel('noise', 23, 0.7, 9, dist), ['logits', 'rng']);
    const l = randomArray(23, 4);
    const ex = await PlanExecutor.create(await testGpu(), b.build());
    try {
      const noisy = async (train: boolean, seed = 5) => {
        ex.write('logits', l);
        ex.write('rng', dropoutUniforms(seed, 2, train));
        ex.run('run');
        return ex.read('logits');
      };
      const got = await noisy(true);
      close(`${dist} noise`, got, routerNoiseReference(l, 0.7, 9, 5, 2, true, dist), dist === 'uniform' ? 1e-5 : 1e-4);
      assert.ok(got.some((v, i) => Math.abs(v - l[i]!) > 0.1), 'the noise is visible');
      if (dist === 'uniform') {
        // The noise itself, against the reference's, in [0, 0.7).
        const want = routerNoiseReference(new Float32Array(23), 0.7, 9, 5, 2, true, 'uniform');
        for (let i = 0; i < 23; i++) {
          assert.ok(want[i]! >= 0 && want[i]! < 0.7, `reference noise ${want[i]} in [0, 0.7)`);
          const d = got[i]! - l[i]!;
          assert.ok(d >= -1e-6 && d < 0.7 + 1e-6, `noise ${d} in [0, 0.7)`);
          assert.ok(Math.abs(d - want[i]!) <= 1e-5, `noise ${i}: ${d} vs ${want[i]}`);
        }
        assert.ok(Math.max(...want) - Math.min(...want) > 0.3, 'the draws spread over the range');
        assert.notDeepEqual(got, routerNoiseReference(l, 0.7, 9, 5, 2, true, 'gaussian'), 'not the Gaussian draw');
      }
      assert.notDeepEqual(await noisy(true, 6), got);
      assert.deepEqual(await noisy(false), l);
    } finally {
      ex.destroy();
    }
  });
}
