import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { writeReport } from '../../../runtime/report/report.js';
import { writeFakeSweep } from '../store/fake-sweep.js';

// The fake sweep: valid ppl of top=k, seed=s is 10k + 2s (+0.5 for the mean of the last two
// evaluations), so top=2 − top=1 is exactly +10 for both seeds; top=3 has one finished seed.
test('report: the effects section, effects.csv and the forest plot', async () => {
  const store = writeFakeSweep();
  const r = await writeReport(store.dir);
  const ppl = r.effects.find((m) => m.metric === 'final validation perplexity')!;
  const top2 = ppl.effects.find((e) => e.value === '2')!;
  assert.deepEqual([top2.dimension, top2.reference, top2.n, top2.diffs, top2.verdict], ['model.moe.top', '1', 2, [10, 10], 'beyond noise']);
  const top3 = ppl.effects.find((e) => e.value === '3')!;
  assert.deepEqual([top3.n, top3.verdict, top3.lo], [1, 'one seed', null]);
  // The specialisation by language is a metric of its own (the fake counts do not depend on top).
  const jsd = r.effects.find((m) => m.metric.startsWith('specialisation by language'))!;
  assert.equal(jsd.effects.find((e) => e.value === '2')!.verdict, 'within noise');

  const md = readFileSync(r.files.markdown, 'utf8');
  assert.match(md, /## Effects/);
  assert.match(md, /\| top: 2 vs 1 \| averaged over the rest \| 2 \| \+10\.000 \| \[\+10\.000, \+10\.000\] \| beyond noise \|/);
  assert.match(md, /!\[effects on final validation perplexity\]\(figures\/effects-ppl\.png\)/);
  assert.ok(existsSync(path.join(store.dir, 'figures', 'effects-ppl.svg')));
  const csv = readFileSync(r.files.effectsCsv, 'utf8').split('\r\n');
  assert.equal(csv[0], 'metric,kind,dimension,value,reference,held_fixed,seeds,mean_difference,sd,ci95_lo,ci95_hi,verdict');
  assert.ok(csv.some((l) => l.startsWith('final validation perplexity,dimension,model.moe.top,2,1,{},2,10,0,10,10,beyond noise')), csv.join('\n'));
});

test("report: the sweep's compare lines come first, against the value they name", async () => {
  const store = writeFakeSweep();
  store.setAnalysis({ comparisons: [{ path: 'model.moe.top', reference: '2', by: [] }] });
  const r = await writeReport(store.dir);
  const ppl = r.effects.find((m) => m.metric === 'final validation perplexity')!;
  assert.deepEqual(ppl.named.map((e) => [e.value, e.reference, e.diffs]), [['1', '2', [-10, -10]], ['3', '2', [10]]]);
  const md = readFileSync(r.files.markdown, 'utf8');
  assert.match(md, /The sweep names 1 comparison \(`compare`\): `model\.moe\.top` against 2\./);
  assert.match(md, /Named comparisons:\n\n\| comparison[^\n]*\n[^\n]*\n\| top: 1 vs 2 \| averaged over the rest \| 2 \| −10\.000 \|/);
});
