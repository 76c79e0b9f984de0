import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { moeSelName, moeStatsName } from '../../../compiler/graph/moe-outputs.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { STAT } from '../../../compiler/reference/moe.js';
import { seqBalanceReference } from '../../../compiler/reference/moe-seq-balance.js';
import { rng } from '../../../compiler/reference/random.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { batch, gradCheck, labels, moeConfig, spec } from './moe-helpers.js';

// The sequence-wise balance loss (balance-over sequence) in the whole tiny model of moe-helpers.ts
// (2 sequences of 5 tokens): finite differences of the training loss against the analytic
// gradient, with a balance weight large enough that its gradient is a visible part of the router's;
// and the training loss holding λ · the sequence-wise loss of the model's own routing.

const variants: [string, Partial<MoeConfig>, number?][] = [
  ['token, learned, softmax-topk, top 2 of 3, balance 0.5 + z-loss', { balanceOver: 'sequence', balance: 0.5 }],
  ['token, learned, sigmoid renormalised, top 1 of 3, accumulate 2 (the loss scaled too)', { balanceOver: 'sequence', balance: 0.5, gate: 'sigmoid', normalize: true, top: 1 }, 2],
  ['global scope, cosine router (dim 4), capacity 0.8 (drops)', { balanceOver: 'sequence', balance: 0.5, scope: 'global', router: 'cosine', dim: 4, dropless: false, capacity: 0.8 }],
];

for (const [what, o, accumulate] of variants) {
  test(`sequence-wise balance loss: gradients match finite differences: ${what}`, async () => {
    const { failures, checked, skipped } = await gradCheck(moeConfig(o), 0, accumulate ?? 1);
    assert.deepEqual(failures, []);
    assert.ok(checked >= 2 * skipped && checked >= 12, `checked ${checked}, skipped ${skipped} (routing changed)`);
  });
}

test('the training loss holds λ · the sequence-wise balance loss of the model\'s own routing; the batch form\'s differs by λ · (sequence − batch)', async () => {
  const losses: Record<string, { loss: number; balance: number[]; ref: number[] }> = {};
  for (const over of ['batch', 'sequence'] as const) {
    const moe = moeConfig({ balanceOver: over, balance: 0.5, zloss: 0 });
    const compiled = compileGpt2(spec, moeBlock(spec, moe));
    const m = await GpuModel.create(await testGpu(), compiled);
    try {
      m.initParams(7);
      const r = rng(99);
      m.writeParams((await m.readFlat('params')).map((v) => v + 0.2 * (r() - 0.5)));
      const b = batch(5);
      m.gradients(b.tokens, b.targets, 0, 1, labels);
      const loss = await m.trainLoss();
      m.ex.run('eval_step');
      const balance: number[] = [];
      const ref: number[] = [];
      for (const l of moe.layers) {
        balance.push((await m.ex.read(moeStatsName(l)))[STAT.balance]!);
        const sel = new Uint32Array(await m.ex.readBytes(moeSelName(l)));
        ref.push(seqBalanceReference({ tokens: spec.batch * spec.context, experts: moe.experts, top: moe.top, seqLen: spec.context, score: 'softmax' }, sel, await m.ex.read(`h${l}.moe.logits`)).balance);
      }
      losses[over] = { loss, balance, ref };
    } finally {
      m.destroy();
    }
  }
  const seq = losses.sequence!;
  const bat = losses.batch!;
  seq.balance.forEach((v, i) => assert.ok(Math.abs(v - seq.ref[i]!) <= 1e-5 * seq.ref[i]!, `layer ${i}: the statistics' balance ${v} is the reference's sequence loss ${seq.ref[i]}`));
  // Where both sequences send the same counts to each expert the two losses are equal (f_b = f); not everywhere.
  assert.ok(bat.balance.some((v, i) => Math.abs(v - seq.balance[i]!) > 1e-3), `batch ${bat.balance.join(', ')} vs sequence ${seq.balance.join(', ')}`);
  const want = 0.5 * seq.balance.reduce((a, v, i) => a + v - bat.balance[i]!, 0);
  assert.ok(Math.abs(seq.loss - bat.loss - want) <= 1e-5 * Math.abs(seq.loss), `loss difference ${seq.loss - bat.loss} vs λ·(sequence − batch) ${want}`);
});
