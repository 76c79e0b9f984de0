// What the report adds beyond the basic tables: a column per perplexity data set, the router's
// balance/z/dropped statistics, rates over every resumed segment, and legends named by what differs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configLabels } from '../../../runtime/report/labels.js';
import { perplexitySpec } from '../../../runtime/report/charts.js';
import { writeReport } from '../../../runtime/report/report.js';
import { writeFakeSweep } from '../store/fake-sweep.js';

test('legends name configurations by the fewest settings that tell them apart', () => {
  const configs = [
    { config: 'gate=softmax-topk,normalize=false,noise=0,router=learned', params: { 'model.moe.gate': 'softmax-topk', 'model.moe.normalize': 'false', 'model.moe.noise': '0', 'model.moe.router': 'learned' } },
    { config: 'gate=softmax-topk,normalize=false,noise=0,router=frozen', params: { 'model.moe.gate': 'softmax-topk', 'model.moe.normalize': 'false', 'model.moe.noise': '0', 'model.moe.router': 'frozen' } },
    { config: 'gate=sigmoid,normalize=false,noise=0,router=learned', params: { 'model.moe.gate': 'sigmoid', 'model.moe.normalize': 'false', 'model.moe.noise': '0', 'model.moe.router': 'learned' } },
  ];
  assert.deepEqual(configLabels(configs).map((l) => l.label), ['gate=softmax-topk router=learned', 'gate=softmax-topk router=frozen', 'gate=sigmoid router=learned']);
  assert.deepEqual(configLabels([{ config: 'base', params: {} }]).map((l) => l.label), ['base']);
});

test('the perplexity axis fits the data (no fixed decades) and steps tick at integers', () => {
  const pts = [10, 20, 30].map((step) => ({ config: 'a', step, mean: 40 - step / 10, lo: 39 - step / 10, hi: 41 - step / 10, seeds: 2 }));
  const spec = perplexitySpec(pts, [{ config: 'a', label: 'a' }]) as unknown as { layer: { encoding: { x: { axis: { tickMinStep: number } }; y: { scale: { domain: number[]; nice: boolean } } } }[] };
  const { x, y } = spec.layer[1]!.encoding;
  assert.equal(x.axis.tickMinStep, 1);
  assert.equal(y.scale.nice, false);
  const [lo, hi] = y.scale.domain as [number, number];
  assert.ok(lo > 35 && lo < 36 && hi > 40 && hi < 41, `domain ${lo}..${hi}`);
});

test('every perplexity data set gets its column, the router statistics theirs, and a resumed trial sums its segments', async () => {
  const store = writeFakeSweep();
  const { trials } = JSON.parse(readFileSync(`${store.dir}/index.json`, 'utf8')) as { trials: { id: string; name: string }[] };
  const first = trials[0]!;
  const ts = store.trial(first.id);
  // A second data set, and router statistics per layer, in the metrics the trainer writes.
  ts.appendMetric({ kind: 'eval', step: 40, valid_loss: Math.log(13), valid_ppl: 13, 'wiki.valid.ppl': 13, 'brown.valid.ppl': 77.5 });
  ts.appendMetric({ kind: 'train', step: 40, loss: 2.6, lr: 1e-3, tokens_per_s: 900, time_s: 20, moe_balance: [1.1, 1.3], moe_z: [0.2, 0.4], moe_dropped: [0.1, 0.3] } as never);
  // Two segments: 30 s + 10 s of training at 1000 tokens/s overall.
  ts.writeStatus({ state: 'done', step: 40, steps: 40, started: '2026-11-23T10:00:00.000Z', finished: '2026-11-23T11:00:00.000Z', wall_s: 3000, tokens_per_s: 1000, train_s: 40, compile_s: 12, adapter: 'llvmpipe' });
  const r = await writeReport(store.dir);
  const row = r.trials.find((t) => t.id === first.id)!;
  assert.equal(row.ppl_sets['brown.valid'], 77.5);
  assert.ok(Math.abs(row.balance_last! - 1.2) < 1e-12);
  assert.ok(Math.abs(row.dropped_last! - 0.2) < 1e-12);
  assert.equal(row.wall_s, 3000);
  assert.equal(row.tokens_per_s, 1000);
  const md = readFileSync(r.files.markdown, 'utf8');
  assert.match(md, /\| brown\.valid ppl \(mean of last 2\) \|/);
  assert.match(md, /balance loss \(last step\) \| z loss \(last step\) \| dropped \(last step\)/);
  assert.match(md, /\| 50 min 0 s \| 12\.0 s \|/, 'wall time over both segments, then the compile time');
  assert.match(md, /\| 1000 \|/);
  const csv = readFileSync(r.files.csv, 'utf8').split('\r\n');
  const head = csv[0]!.split(',');
  assert.ok(head.includes('ppl_avg_mean[brown.valid]') && head.includes('ppl_avg_mean[wiki.valid]') && head.includes('dropped_last_n'), head.join(','));
  const trialsCsv = readFileSync(r.files.trialsCsv, 'utf8').split('\r\n');
  const th = trialsCsv[0]!.split(',');
  // RFC 4180 cells: trial names hold commas, so they are quoted.
  const cells = (l: string) => [...l.matchAll(/("(?:[^"]|"")*"|[^,]*)(?:,|$)/g)].map((m) => m[1]!).slice(0, th.length);
  const line = cells(trialsCsv.find((l) => l.startsWith(first.id))!);
  assert.equal(line[th.indexOf('ppl_avg[brown.valid]')], '77.5');
  assert.ok(Math.abs(Number(line[th.indexOf('balance_last')]) - 1.2) < 1e-12);
  // Every table with seeds says how many: the pooled specialisation table and the top-tokens spread included.
  assert.match(md, /pooled over 2 seeds/);
  assert.match(md, /entropy per seed: mean ± std \(n\)/);
});
