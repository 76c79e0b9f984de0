import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moeDispatchKernel } from '../../../compiler/kernels/moe-dispatch.js';
import { moeRouterBackwardKernel } from '../../../compiler/kernels/moe-router.js';
import { moeSeqBalanceKernel } from '../../../compiler/kernels/moe-seq-balance.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { moeDispatchReference, moeRouterReference, type MoeRouterShape, routerBackwardReference, type RouterLossShape, STAT, statsLength } from '../../../compiler/reference/moe.js';
import { type SeqBalanceShape, seqBalanceReference, sequencesOf } from '../../../compiler/reference/moe-seq-balance.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// The sequence-wise balance loss (DeepSeek-V3; balance-over sequence): its forward kernel (the loss
// into STAT.balance, each sequence's counts) and the router backward's gradient of it, against the
// references on odd shapes; the reference gradient against central differences of the reference
// loss; and the batch and sequence losses on a batch balanced overall but skewed per sequence.

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
const relDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => norm(Array.from(a, (v, i) => v - b[i]!)) / Math.max(norm(b), 1e-30);

const routeShape = (s: SeqBalanceShape, normalize: boolean): MoeRouterShape =>
  ({ tokens: s.tokens, experts: s.experts, top: s.top, rep: 1, mode: 'logits', score: s.score, normalize, salt: 0, seqLen: s.seqLen });

/** The GPU's dispatch statistics (the batch balance loss) and, after them, the sequence-wise kernel's loss and counts. */
async function gpuLosses(s: SeqBalanceShape, sel: Uint32Array, logits: Float32Array) {
  const { tokens: N, experts: E, top: K } = s;
  const b = new PlanBuilder('seq-balance');
  b.buffer('sel', N * K); b.buffer('logits', N * E); b.buffer('seqcounts', sequencesOf(s) * E); b.buffer('stats', statsLength(E), 'output');
  b.buffer('offsets', E + 1); b.buffer('perm', N * K); b.buffer('pos', N * K);
  b.dispatch('batch', moeDispatchKernel('dispatch', { tokens: N, experts: E, top: K, rep: 1, capacity: N * K, logits: true, score: s.score }), ['sel', 'logits', 'offsets', 'perm', 'pos', 'stats']);
  b.dispatch('sequence', moeSeqBalanceKernel('seq', s), ['sel', 'logits', 'seqcounts', 'stats']);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    ex.write('sel', sel); ex.write('logits', logits);
    ex.run('batch');
    const batch = await ex.read('stats');
    ex.run('sequence');
    return { batch, seq: await ex.read('stats'), counts: await ex.read('seqcounts') };
  } finally {
    ex.destroy();
  }
}

const shapes: [string, SeqBalanceShape, boolean][] = [
  ['3 sequences of 5 tokens, 7 experts, top 2, softmax', { tokens: 15, experts: 7, top: 2, seqLen: 5, score: 'softmax' }, false],
  ['3 sequences of 5 tokens, 7 experts, top 1, softmax', { tokens: 15, experts: 7, top: 1, seqLen: 5, score: 'softmax' }, false],
  ['67 sequences of 3 tokens (more than one per invocation), 5 experts, top 3, sigmoid renormalised', { tokens: 201, experts: 5, top: 3, seqLen: 3, score: 'sigmoid' }, true],
];

for (const [what, s, normalize] of shapes) {
  test(`sequence-wise balance loss forward, ${what}: loss and counts as the reference, the other statistics kept`, async () => {
    const logits = randomArray(s.tokens * s.experts, 21, 2);
    const { sel } = moeRouterReference(routeShape(s, normalize), { logits });
    const got = await gpuLosses(s, sel, logits);
    const want = seqBalanceReference(s, sel, logits);
    assert.deepEqual(got.counts, want.counts);
    // Every sequence's counts add up to its T·K assignments.
    for (let b = 0; b < sequencesOf(s); b++) assert.equal(want.counts.subarray(b * s.experts, (b + 1) * s.experts).reduce((a, v) => a + v, 0), s.seqLen * s.top);
    assert.ok(Math.abs(got.seq[STAT.balance]! - want.balance) <= 1e-5 * want.balance, `balance ${got.seq[STAT.balance]} vs ${want.balance}`);
    assert.deepEqual(got.seq.subarray(1), got.batch.subarray(1), 'only the balance figure changes');
    // The batch figure the dispatch wrote is another number (these random routers differ per sequence).
    assert.ok(Math.abs(got.batch[STAT.balance]! - want.balance) > 1e-3, `batch ${got.batch[STAT.balance]} vs sequence ${want.balance}`);
  });

  test(`sequence-wise balance loss backward, ${what}: the router's dlogits as the reference; the reference as central differences`, async () => {
    const { tokens: N, experts: E, top: K } = s;
    const logits = randomArray(N * E, 31, 2);
    const route = routeShape(s, normalize);
    const { sel } = moeRouterReference(route, { logits });
    const { counts } = seqBalanceReference(s, sel, logits);
    const stats = moeDispatchReference({ tokens: N, experts: E, top: K, rep: 1, capacity: N * K, score: s.score }, sel, logits).stats;
    const dgate = randomArray(N * K, 32, 0.1);
    const shape: RouterLossShape = { ...route, balance: 0.37, zloss: 0.02, balanceOver: 'sequence' };
    const b = new PlanBuilder('seq-balance-bwd');
    b.buffer('logits', N * E); b.buffer('sel', N * K); b.buffer('dgate', N * K); b.buffer('stats', statsLength(E)); b.buffer('seqcounts', sequencesOf(s) * E); b.buffer('dlogits', N * E);
    b.dispatch('run', moeRouterBackwardKernel('bwd', shape), ['logits', 'sel', 'dgate', 'stats', 'seqcounts', 'dlogits']);
    const ex = await PlanExecutor.create(await testGpu(), b.build());
    let got: Float32Array;
    try {
      ex.write('logits', logits); ex.write('sel', sel); ex.write('dgate', dgate); ex.write('stats', stats); ex.write('seqcounts', counts);
      ex.run('run');
      got = await ex.read('dlogits');
    } finally {
      ex.destroy();
    }
    const want = routerBackwardReference(shape, logits, sel, dgate, stats, counts);
    assert.ok(relDiff(got, want) <= 1e-5, `GPU vs reference: relative difference ${relDiff(got, want)}`);
    const batchForm = routerBackwardReference({ ...shape, balanceOver: 'batch' }, logits, sel, dgate, stats);
    assert.ok(relDiff(want, batchForm) > 1e-3, 'the sequence-wise gradient is not the batch-wise one');

    // The balance term alone (no gate gradients, no z-loss) is the derivative of weight · loss with
    // the choices held fixed (f is piecewise constant in the logits).
    const only: RouterLossShape = { ...shape, zloss: 0 };
    const analytic = routerBackwardReference(only, logits, sel, new Float32Array(N * K), stats, counts);
    const h = 1e-3;
    const fd = Array.from(logits, (_v, i) => {
      const at = (d: number) => { const l = Float64Array.from(logits); l[i]! += d; return seqBalanceReference(s, sel, l).balance; };
      return (only.balance * (at(h) - at(-h))) / (2 * h);
    });
    assert.ok(relDiff(analytic, fd) <= 1e-5, `reference vs central differences: relative difference ${relDiff(analytic, fd)}`);
  });
}

test('balanced over the batch but each sequence on one expert: a near-minimal batch loss, a near-maximal sequence loss (reference and GPU)', async () => {
  // 4 sequences of 8 tokens, 4 experts, top 1: sequence b's tokens all prefer expert b strongly,
  // so the micro-batch's load is uniform (f_i = 1/4, P_i ≈ 1/4) and each sequence's is one expert.
  const s: SeqBalanceShape = { tokens: 32, experts: 4, top: 1, seqLen: 8, score: 'softmax' };
  const jitter = randomArray(s.tokens * s.experts, 41, 0.3);
  const skewed = jitter.map((v, i) => v + (Math.floor(i / s.experts / s.seqLen) === i % s.experts ? 8 : 0));
  // The control: every sequence spreads its tokens over the experts in turn (balanced at both levels).
  const spread = jitter.map((v, i) => v + ((Math.floor(i / s.experts) % s.experts) === i % s.experts ? 8 : 0));
  for (const [what, logits, batchLoss, seqLoss] of [['skewed per sequence', skewed, [0.99, 1.01], [3.9, 4]], ['spread in every sequence', spread, [0.99, 1.01], [0.99, 1.01]]] as const) {
    const { sel } = moeRouterReference(routeShape(s, false), { logits });
    const batchRef = moeDispatchReference({ tokens: s.tokens, experts: 4, top: 1, rep: 1, capacity: s.tokens, score: 'softmax' }, sel, logits).stats[STAT.balance]!;
    const seqRef = seqBalanceReference(s, sel, logits).balance;
    const gpu = await gpuLosses(s, sel, logits);
    for (const [who, bl, sl] of [['reference', batchRef, seqRef], ['GPU', gpu.batch[STAT.balance]!, gpu.seq[STAT.balance]!]] as const) {
      assert.ok(bl >= batchLoss[0] && bl <= batchLoss[1], `${what}, ${who}: batch loss ${bl} in [${batchLoss.join(', ')}]`);
      assert.ok(sl >= seqLoss[0] && sl <= seqLoss[1], `${what}, ${who}: sequence loss ${sl} in [${seqLoss.join(', ')}]`);
    }
  }
});
