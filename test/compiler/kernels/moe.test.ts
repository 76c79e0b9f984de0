import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moeCosineForwardKernel, moePoolBackwardKernel, moePoolForwardKernel, moeRouterNoiseKernel } from '../../../compiler/kernels/moe-router.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { dropoutUniforms } from '../../../compiler/reference/dropout.js';
import { cosineLogitsReference, moeRouterReference, NO_SLOT, poolReference, routerNoiseReference } from '../../../compiler/reference/moe.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';
import { check, close } from './moe-chain.js';

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
