// The report's MoE load diagnostics on a stored run: a sweep whose train records carry `moe`
// entries gets one figure (curves, mean ± std over seeds) and a last-step table with ± std.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { diagnosticCurves, diagnosticsTable } from '../../../runtime/report/diagnostics.js';
import { loadRun } from '../../../runtime/report/load.js';
import { writeReport } from '../../../runtime/report/report.js';
import type { MoeLayerMetric } from '../../../runtime/store/types.js';
import { writeFakeSweep } from '../store/fake-sweep.js';

const entry = (layer: number, overload: number, dead: number): MoeLayerMetric => ({
  layer, steps: 10, tokens: { min: 0, p10: 4, median: 10, p90: 20, max: 30, mean: 12 }, overload, dead, maxShare: 0.4, fairShare: 0.25, dropped: 0.01 * dead, entropy: 1.2, balance: 1.05, z: 0.3,
});

/** The fake sweep (top=1..3 × seeds 1, 2) with diagnostics at steps 10..40: overload = top + seed/10 + step/100 on layer 0. */
function storedRun() {
  const store = writeFakeSweep();
  for (const t of store.index.trials) {
    const top = Number(/top=(\d)/.exec(t.name)![1]);
    const seed = Number(/seed=(\d)/.exec(t.name)![1]);
    for (const step of [10, 20, 30, 40]) {
      store.trial(t.id).appendMetric({
        kind: 'train', step, loss: 2 + seed / 10, total: 2.05 + seed / 10, ppl: Math.exp(2 + seed / 10), balance_loss: 0.05, z_loss: 0, lr: 3e-3, tokens_per_s: 1000, time_s: step,
        moe: [entry(0, top + seed / 10 + step / 100, seed - 1), entry(1, 1.1, 0)],
      } as never);
    }
  }
  return store;
}

test('diagnostic curves: per configuration, layer and step, mean ± std over seeds', () => {
  const run = loadRun(storedRun().dir);
  const pts = diagnosticCurves(run.trials).filter((p) => p.config === 'top=2' && p.layer === 0 && p.figure.startsWith('overload'));
  assert.deepEqual(pts.map((p) => p.step), [10, 20, 30, 40]);
  // Seeds 1 and 2: 2.1 + s/100 and 2.2 + s/100 → mean 2.15 + s/100, std 0.1/√2.
  assert.ok(Math.abs(pts[0]!.mean - 2.25) < 1e-9 && Math.abs(pts[0]!.hi - pts[0]!.mean - 0.1 / Math.SQRT2) < 1e-9);
  assert.equal(pts[0]!.seeds, 2);
  // Dead experts 0 and 1 over the seeds: mean 0.5, std 0.71; the band stops at 0, not at −0.21.
  const dead = diagnosticCurves(run.trials).find((p) => p.config === 'top=2' && p.layer === 0 && p.figure === 'dead experts')!;
  assert.deepEqual([dead.mean, dead.lo], [0.5, 0]);
});

test('the last-step table: finished trials only, mean ± std over seeds per configuration and layer', () => {
  const run = loadRun(storedRun().dir);
  const { head, rows } = diagnosticsTable(run.trials);
  assert.deepEqual(head.slice(0, 5), ['configuration', 'layer', 'LM loss', 'total', 'overload (max / mean load)']);
  const top2 = rows.find((r) => r[0] === 'top=2' && r[1] === '0')!;
  assert.equal(top2[2], '2.150 ± 0.071 (n=2)');
  assert.equal(top2[4], '2.550 ± 0.071 (n=2)');
  assert.equal(top2[5], '0.500 ± 0.707 (n=2)'); // dead experts: 0 and 1
  // top=3 seed 2 failed: its last step is left out of the statistics.
  const top3 = rows.find((r) => r[0] === 'top=3' && r[1] === '0')!;
  assert.equal(top3[4], '3.500 (n=1)');
});

test('writeReport adds the diagnostics section and its one figure for the sweep', async () => {
  const store = storedRun();
  const r = await writeReport(store.dir);
  const md = readFileSync(r.files.markdown, 'utf8');
  assert.match(md, /## MoE load diagnostics/);
  assert.match(md, /\| top=2 \| 0 \| 2\.150 ± 0\.071 \(n=2\) \|/);
  const figs = r.files.figures.filter((f) => /moe-diagnostics\.(svg|png)$/.test(f));
  assert.equal(figs.length, 2);
  for (const f of figs) assert.ok(existsSync(f));
});

test('a run without diagnostics gets no section', async () => {
  const r = await writeReport(writeFakeSweep().dir);
  assert.doesNotMatch(readFileSync(r.files.markdown, 'utf8'), /MoE load diagnostics/);
});
