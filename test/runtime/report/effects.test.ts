import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../../../compiler/reference/random.js';
import { comparisonText, effectLabel, effects, foldedDimension, foldZips, tInterval } from '../../../runtime/report/effects.js';
import type { TrialRow } from '../../../runtime/report/summary.js';
import type { Comparison } from '../../../compiler/frontend/types.js';
import { effectsSection } from '../../../runtime/report/effects-section.js';
import type { RunData } from '../../../runtime/report/load.js';

function row(params: Record<string, string>, seed: number, ppl: number | null, status = 'done'): TrialRow {
  const name = [...Object.entries(params).map(([k, v]) => `${k.split('.').pop()}=${v}`), `seed=${seed}`].join(',');
  return {
    id: name, name, config: name.replace(/,?seed=\d+$/, ''), params, seed, status, step: 10, steps: 10, evals: 1,
    ppl_last: ppl, ppl_avg: ppl, average: 1, acc_avg: null, entropy_avg: null, spread_avg: null, params_total: 1, params_active: 1,
    tokens_per_s: 1, wall_s: 1, error: null, compile_s: null, ppl_sets: {}, balance_last: null, z_last: null, dropped_last: null,
  };
}

/** Standard normal draws from a seeded generator (Box-Muller). */
function normal(seed: number): () => number {
  const r = rng(seed);
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

test('the t-interval of paired differences is the textbook one', () => {
  const e = tInterval([1, 2, 3]);
  assert.equal(e.mean, 2);
  assert.equal(e.sd, 1);
  // t(0.975, 2) = 4.302653; half-width 4.302653 / sqrt(3).
  assert.ok(Math.abs(e.hi! - (2 + 4.302653 / Math.sqrt(3))) < 1e-5, `hi ${e.hi}`);
  assert.ok(Math.abs(e.lo! - (2 - 4.302653 / Math.sqrt(3))) < 1e-5, `lo ${e.lo}`);
  assert.equal(e.verdict, 'within noise');
  assert.equal(tInterval([1.0, 1.1, 0.9, 1.05]).verdict, 'beyond noise');
  assert.deepEqual(tInterval([4]), { n: 1, mean: 4, sd: null, lo: null, hi: null, verdict: 'one seed' });
});

// A sweep of unit × top × 6 seeds whose perplexity is 30 + 4 (sequence) + 0 (top 2) + a per-seed
// offset shared by every configuration + noise of sd 0.5: the unit effect must come out beyond
// noise and near 4, the top effect within noise and near 0, at each held-fixed setting and averaged.
test('known effects come out: a real one beyond noise, a zero one within noise', () => {
  const noise = normal(7);
  const seedOffset = normal(8);
  const offsets = Array.from({ length: 6 }, () => 5 * seedOffset());
  const rows: TrialRow[] = [];
  for (const unit of ['token', 'sequence']) {
    for (const top of ['1', '2']) {
      for (let seed = 1; seed <= 6; seed++) {
        rows.push(row({ 'model.moe.unit': unit, 'model.moe.top': top }, seed, 30 + (unit === 'sequence' ? 4 : 0) + offsets[seed - 1]! + 0.5 * noise()));
      }
    }
  }
  const all = effects(rows, (r) => r.ppl_last);
  const unit = all.filter((e) => e.dimension === 'model.moe.unit');
  assert.equal(unit.length, 3, 'averaged over top, and one row per top');
  for (const e of unit) {
    assert.equal(e.reference, 'token');
    assert.equal(e.value, 'sequence');
    assert.equal(e.n, 6);
    assert.equal(e.verdict, 'beyond noise', effectLabel(e));
    assert.ok(e.lo! > 2 && e.hi! < 6, `${effectLabel(e)}: [${e.lo}, ${e.hi}]`);
  }
  const top = all.filter((e) => e.dimension === 'model.moe.top');
  assert.equal(top.length, 3);
  for (const e of top) {
    assert.equal(e.verdict, 'within noise', `${effectLabel(e)}: [${e.lo}, ${e.hi}]`);
    assert.ok(Math.abs(e.mean) < 1, effectLabel(e));
  }
  // Without pairing by seed the per-seed offsets (sd 5) would swamp the unit effect's interval.
  const perTop = unit.find((e) => e.context['model.moe.top'] === '1')!;
  assert.ok(perTop.hi! - perTop.lo! < 2, `paired interval width ${perTop.hi! - perTop.lo!}`);
  assert.equal(effectLabel(perTop), 'unit: sequence vs token | top=1');
});

test('pairs need the same seed and the same other settings; unfinished trials and missing metrics leave pairs out', () => {
  const rows = [
    row({ a: 'x', b: '1' }, 1, 10), row({ a: 'y', b: '1' }, 1, 12),
    row({ a: 'x', b: '1' }, 2, 10), row({ a: 'y', b: '1' }, 2, 13),
    row({ a: 'x', b: '1' }, 3, 10), row({ a: 'y', b: '1' }, 3, 99, 'failed'),
    row({ a: 'x', b: '2' }, 1, 10), row({ a: 'y', b: '2' }, 4, 50), // seed 4 has no reference
    row({ a: 'x', b: '2' }, 2, 10), row({ a: 'y', b: '2' }, 2, null),
  ];
  const e = effects(rows, (r) => r.ppl_last, { dimensions: ['a'], by: ['b'] });
  assert.deepEqual(e.map((x) => [x.context, x.diffs]), [[{ b: '1' }, [2, 3]]]);
});

test('averaging over other settings counts seeds, not pairs; a baseline is a dimension with `none` as reference', () => {
  const rows: TrialRow[] = [];
  for (let seed = 1; seed <= 3; seed++) {
    for (const top of ['1', '2']) {
      rows.push(row({ top }, seed, 20 + seed));
      rows.push(row({ top, baseline: 'same total' }, seed, 18 + seed + (top === '2' ? 1 : 0)));
    }
  }
  const e = effects(rows, (r) => r.ppl_last, { dimensions: ['baseline'], by: [] });
  assert.equal(e.length, 1);
  assert.equal(e[0]!.reference, 'none');
  assert.equal(e[0]!.value, 'same total');
  assert.equal(e[0]!.n, 3);
  assert.deepEqual(e[0]!.diffs, [-1.5, -1.5, -1.5]);
  assert.equal(e[0]!.verdict, 'beyond noise');
  const ref = effects(rows, (r) => r.ppl_last, { dimensions: ['baseline'], by: [], reference: { baseline: 'same total' } });
  assert.deepEqual(ref[0]!.diffs, [1.5, 1.5, 1.5]);
});

// A zip of (experts, top, balance) with three arms × a product dimension lr × 4 seeds: perplexity
// 20 + 3 (arm 2) + 0 (arm 3) + a per-seed offset + noise. A zip's paths move together, so per path
// nothing can be held fixed; folded into one dimension, arm 2 must come out beyond noise near +3
// and arm 3 within noise, each row naming only the settings in which the arms differ.
test('a zip block is one dimension: its arms against the first, naming what differs', () => {
  const noise = normal(11);
  const arms = [{ 'model.moe.experts': '8', 'model.moe.top': '2', 'model.moe.balance': '0.01' }, { 'model.moe.experts': '8', 'model.moe.top': '1', 'model.moe.balance': '0.01' }, { 'model.moe.experts': '32', 'model.moe.top': '7', 'model.moe.balance': '0.01' }];
  const rows: TrialRow[] = [];
  for (let seed = 1; seed <= 4; seed++) {
    arms.forEach((arm, a) => {
      for (const lr of ['1e-3', '2e-3']) rows.push(row({ ...arm, 'train.lr': lr }, seed, 20 + (a === 1 ? 3 : 0) + seed + 0.1 * noise()));
    });
  }
  const zips = [['model.moe.experts', 'model.moe.top', 'model.moe.balance']];
  // Unfolded, the third arm differs from the others in two paths at once: it is in no effect.
  assert.deepEqual(effects(rows, (r) => r.ppl_avg, { by: [] }).filter((e) => e.dimension !== 'train.lr').map((e) => `${e.dimension}=${e.value}`), ['model.moe.top=1']);
  const folded = foldZips(rows, zips);
  assert.deepEqual(Object.keys(folded[0]!.params).sort(), ['train.lr', 'zip:model.moe.experts+model.moe.top+model.moe.balance']);
  const es = effects(folded, (r) => r.ppl_avg, { by: [] }).filter((e) => e.dimension.startsWith('zip:'));
  assert.deepEqual(es.map((e) => comparisonText(e)), ['top=1 vs top=2', 'experts=32, top=7 vs experts=8, top=2']);
  assert.deepEqual(es.map((e) => [e.n, e.verdict]), [[4, 'beyond noise'], [4, 'within noise']]);
  assert.ok(Math.abs(es[0]!.mean - 3) < 0.3, `arm 2 − arm 1 = ${es[0]!.mean}`);
  assert.equal(foldedDimension('model.moe.top', zips), 'zip:model.moe.experts+model.moe.top+model.moe.balance');
  assert.equal(foldedDimension('train.lr', zips), 'train.lr');
  // Held fixed by the zip: its whole arm.
  const byArm = effects(folded, (r) => r.ppl_avg, { dimensions: ['train.lr'], by: 'all' });
  assert.deepEqual(byArm.map((e) => effectLabel(e)), ['lr: 2e-3 vs 1e-3 | experts=8,top=2,balance=0.01', 'lr: 2e-3 vs 1e-3 | experts=8,top=1,balance=0.01', 'lr: 2e-3 vs 1e-3 | experts=32,top=7,balance=0.01']);
});

test("the report's effects section folds the run's zips, and a compare line on a zipped path takes the arm it names", () => {
  const arms = [{ 'model.moe.choice': 'token', 'model.moe.balance': '0.01' }, { 'model.moe.choice': 'token', 'model.moe.balance': '0' }, { 'model.moe.choice': 'expert', 'model.moe.balance': '0' }];
  const rows: TrialRow[] = [];
  for (let seed = 1; seed <= 3; seed++) arms.forEach((arm, a) => rows.push(row(arm, seed, 20 - a + 0.01 * seed * a)));
  const run = (comparisons: Comparison[]) => ({ dir: '', trials: [], index: { version: 1, sweep: 's', file: 'f', preset: null, adapter: 'a', created: '', updated: '', trials: [], comparisons, zips: [['model.moe.choice', 'model.moe.balance']] } }) as RunData;
  const dims = effectsSection(run([]), rows, false);
  assert.ok(dims.md.some((l) => /\| choice=expert, balance=0 vs choice=token, balance=0\.01 \| averaged over the rest \| 3 \| −1\.960 \|/.test(l)), dims.md.join('\n'));
  // `compare model.moe.choice against expert`: one arm has choice expert, so it is the reference.
  const named = effectsSection(run([{ path: 'model.moe.choice', reference: 'expert', by: [] }]), rows, false);
  assert.deepEqual(named.json[0]!.named.map((e) => comparisonText(e)), ['choice=token, balance=0.01 vs choice=expert, balance=0', 'choice=token vs choice=expert']);
  // `against token` names two arms: said, and measured against the first arm.
  const ambiguous = effectsSection(run([{ path: 'model.moe.choice', reference: 'token', by: [] }]), rows, false);
  assert.ok(ambiguous.md.some((l) => l.includes("`model.moe.choice` token names 2 arms of its zip, not one: compared with the zip's first arm instead.")), ambiguous.md.join('\n'));
  assert.equal(ambiguous.json[0]!.named.length, 2);
});
