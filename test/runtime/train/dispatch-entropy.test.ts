import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterExpertEntropy, dispatchEntropy } from '../../../runtime/train/dispatch-entropy.js';
import { trialRow } from '../../../runtime/report/summary.js';

const close = (a: number, b: number, msg: string) => assert.ok(Math.abs(a - b) < 1e-12, `${msg}: ${a} vs ${b}`);

test('one-to-one map: both entropies are 0', () => {
  const d = [[10, 0, 0], [0, 5, 0], [0, 0, 7]];
  assert.equal(dispatchEntropy(d), 0);
  assert.equal(clusterExpertEntropy(d), 0);
});

test('many-to-one: 8 experts, each cluster split evenly over its own 2 experts', () => {
  // Cluster k goes to experts 2k and 2k+1, 50 samples each: every expert sees one cluster (Chen et
  // al.'s entropy 0) while each cluster spreads over two experts (ln 2).
  const d = Array.from({ length: 4 }, (_, k) => Array.from({ length: 8 }, (_, m) => (m >> 1 === k ? 50 : 0)));
  assert.equal(dispatchEntropy(d), 0);
  close(clusterExpertEntropy(d), Math.log(2), 'mirror');
});

test('many-to-one the other way: two clusters share one expert', () => {
  // Clusters 0 and 1 (30 and 10 samples) both go to expert 0; cluster 2 (60) to expert 1.
  const d = [[30, 0], [10, 0], [0, 60]];
  // Expert 0 holds 40 of 100 samples with clusters (3/4, 1/4); expert 1 one cluster.
  const h = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
  close(dispatchEntropy(d), 0.4 * h, 'paper');
  assert.equal(clusterExpertEntropy(d), 0);
});

test('a hand-computed mixed table', () => {
  // Rows clusters, columns experts. Cluster 0: (2, 2) -> ln 2 (4 of 8 samples); cluster 1: (0, 4) -> 0.
  // Expert 0: clusters (2, 0) -> 0 (2 of 8); expert 1: clusters (2, 4) -> H(1/3, 2/3) (6 of 8).
  const d = [[2, 2], [0, 4]];
  close(clusterExpertEntropy(d), 0.5 * Math.log(2), 'mirror');
  const h = -((1 / 3) * Math.log(1 / 3) + (2 / 3) * Math.log(2 / 3));
  close(dispatchEntropy(d), 0.75 * h, 'paper');
  // Uniform over everything: ln(clusters) and ln(experts).
  const u = [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]];
  close(dispatchEntropy(u), Math.log(4), 'paper uniform');
  close(clusterExpertEntropy(u), Math.log(8), 'mirror uniform');
  assert.equal(dispatchEntropy([[0, 0], [0, 0]]), 0);
});

test('report rows: the paper entropy and its mirror; runs from before the split keep only the mirror', () => {
  const evals = (recs: Record<string, number>[]) => recs.map((r, i) => ({ kind: 'eval', step: i + 1, valid_loss: 0.1, valid_ppl: 1.1, valid_acc: 0.9, ...r }));
  const base = { id: 'x', name: 'x', state: 'done', record: undefined, status: undefined, metrics: [], resumes: [] };
  const now = trialRow({ ...base, evals: evals([{ dispatch_entropy: 0.2, cluster_expert_entropy: 0.6 }]) } as never);
  assert.equal(now.entropy_avg, 0.2);
  assert.equal(now.spread_avg, 0.6);
  const old = trialRow({ ...base, evals: evals([{ dispatch_entropy: 0.7 }]) } as never);
  assert.equal(old.entropy_avg, null);
  assert.equal(old.spread_avg, 0.7);
});
