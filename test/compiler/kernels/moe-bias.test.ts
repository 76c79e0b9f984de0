import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moeBiasLoadKernel, moeBiasUpdateKernel } from '../../../compiler/kernels/moe-bias.js';
import { moeRouterForwardKernel } from '../../../compiler/kernels/moe-router.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { biasLoadReference, biasUpdateReference } from '../../../compiler/reference/moe-bias.js';
import { moeRouterReference, type MoeRouterShape, STAT, statsLength } from '../../../compiler/reference/moe.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// Auxiliary-loss-free balancing: the biased top-k of the router forward, and the load count and
// bias update of kernels/moe-bias.ts, against their references on odd shapes.

async function biasedRoute(s: MoeRouterShape, logits: Float32Array, bias: Float32Array) {
  const R = s.tokens / s.rep;
  const b = new PlanBuilder('route');
  b.buffer('logits', R * s.experts); b.buffer('bias', s.experts); b.buffer('sel', s.tokens * s.top); b.buffer('gate', s.tokens * s.top);
  b.dispatch('run', moeRouterForwardKernel('route', s), ['logits', 'bias', 'sel', 'gate']);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    ex.write('logits', logits); ex.write('bias', bias);
    ex.run('run');
    return { sel: new Uint32Array((await ex.read('sel')).buffer), gate: await ex.read('gate') };
  } finally {
    ex.destroy();
  }
}

const shapes: [string, MoeRouterShape][] = [
  ['softmax, top 2 of 5, 37 tokens', { mode: 'logits', score: 'softmax', normalize: false, salt: 3, seqLen: 1, rep: 1, tokens: 37, experts: 5, top: 2, biased: true }],
  ['sigmoid renormalised, top 3 of 7, 41 tokens', { mode: 'logits', score: 'sigmoid', normalize: true, salt: 3, seqLen: 1, rep: 1, tokens: 41, experts: 7, top: 3, biased: true }],
  ['softmax renormalised, sequence routing (6 tokens a row), top 1 of 3', { mode: 'logits', score: 'softmax', normalize: true, salt: 3, seqLen: 6, rep: 6, tokens: 30, experts: 3, top: 1, biased: true }],
];

for (const [what, s] of shapes) {
  test(`biased router forward, ${what}: selection by score + bias, gates from the unbiased scores, as the reference`, async () => {
    const R = s.tokens / s.rep;
    const logits = randomArray(R * s.experts, 11);
    // A bias of the scores' size, so that it changes some choices but not all.
    const bias = randomArray(s.experts, 12).map((v) => 0.3 * v);
    const got = await biasedRoute(s, logits, bias);
    const want = moeRouterReference(s, { logits, bias });
    assert.deepEqual(got.sel, want.sel);
    got.gate.forEach((g, a) => assert.ok(Math.abs(g - want.gate[a]!) <= 1e-6, `gate ${a}: ${g} vs ${want.gate[a]}`));
    const plain = moeRouterReference({ ...s, biased: false }, { logits });
    assert.notDeepEqual(got.sel, plain.sel, 'the bias changes some choices');
    // Where the choices agree with the unbiased router, so do the gates (the bias is selection only).
    for (let n = 0; n < s.tokens; n++) {
      const row = (x: Uint32Array) => x.subarray(n * s.top, (n + 1) * s.top).join();
      if (row(got.sel) === row(plain.sel)) for (let k = 0; k < s.top; k++) assert.ok(Math.abs(got.gate[n * s.top + k]! - plain.gate[n * s.top + k]!) <= 1e-6);
    }
  });
}

test('bias load (summed over micro-batches) and bias update match the reference; equal loads leave the bias', async () => {
  const E = 7;
  const b = new PlanBuilder('bias');
  b.buffer('stats', statsLength(E)); b.buffer('load', E); b.buffer('bias', E);
  b.dispatch('count', moeBiasLoadKernel('count', E), ['stats', 'load']);
  b.dispatch('update', moeBiasUpdateKernel('update', E, 0.001), ['load', 'bias']);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    // Three micro-batches; expert 3's load is the mean (21·3 / 7 = 9) and its bias must not move.
    const counts = [[5, 1, 0, 3, 9, 2, 1], [2, 2, 4, 3, 1, 6, 3], [0, 7, 1, 3, 5, 2, 3]].map((c) => Float32Array.from(c));
    const bias0 = randomArray(E, 4).map((v) => 0.01 * v);
    ex.write('bias', bias0);
    ex.write('load', new Float32Array(E));
    for (const c of counts) {
      const stats = new Float32Array(statsLength(E)).fill(-1);
      stats.set(c, STAT.counts);
      ex.write('stats', stats);
      ex.run('count');
    }
    const load = biasLoadReference(counts, E);
    assert.deepEqual(await ex.read('load'), load);
    ex.run('update');
    const got = await ex.read('bias');
    assert.deepEqual(got, biasUpdateReference(bias0, load, 0.001));
    assert.equal(got[3], bias0[3], 'an expert at the mean load keeps its bias');
    for (let e = 0; e < E; e++) if (e !== 3) assert.equal(Math.sign(got[e]! - bias0[e]!), Math.sign(9 - load[e]!), `expert ${e} moves toward balance`);
  } finally {
    ex.destroy();
  }
});
