// The expert-assignment heat map colours each cell against its expert's mean over the label values,
// on a scale fitted to the data, so a small specialisation is visible beside a large load.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignmentSpec, liftDomain, withLift, type AssignmentCell } from '../../../runtime/report/charts.js';

const rows = (layer: number, byValue: Record<string, number[]>): AssignmentCell[] =>
  Object.entries(byValue).flatMap(([value, fr]) => fr.map((fraction, expert) => ({ layer, value, expert, fraction, tokens: Math.round(1000 * fraction) })));

test('a cell is coloured by its share against its expert mean over the labels (log2), per layer', () => {
  // Expert 0 takes 0.80 of 'en' and 0.60 of 'de': mean 0.70, so en is log2(0.8/0.7) above and de below.
  const cells = withLift([...rows(0, { en: [0.8, 0.2], de: [0.6, 0.4] }), ...rows(1, { en: [0.5, 0.5], de: [0.5, 0.5] })]);
  const at = (layer: number, value: string, expert: number) => cells.find((c) => c.layer === layer && c.value === value && c.expert === expert)!;
  assert.ok(Math.abs(at(0, 'en', 0).lift - Math.log2(0.8 / 0.7)) < 1e-12);
  assert.ok(Math.abs(at(0, 'de', 1).lift - Math.log2(0.4 / 0.3)) < 1e-12);
  assert.ok(at(0, 'de', 0).lift < 0 && at(0, 'en', 1).lift < 0);
  assert.ok(Math.abs(at(0, 'en', 0).mean - 0.7) < 1e-12);
  // A layer that does not specialise is neutral everywhere.
  for (const c of cells.filter((c) => c.layer === 1)) assert.equal(c.lift, 0);
});

test('the colour domain is symmetric and fitted to the data; a near-unused expert does not take the range', () => {
  // Expert 2 gets 0.001 vs 0.01 of the rows: a tenfold ratio of a few tokens, floored at 0.1/3 on both sides.
  const cells = withLift(rows(0, { a: [0.55, 0.449, 0.001], b: [0.45, 0.54, 0.01] }));
  for (const c of cells.filter((c) => c.expert === 2)) assert.equal(c.lift, 0);
  const [lo, hi] = liftDomain(cells);
  assert.equal(lo, -hi);
  const largest = Math.max(...cells.map((c) => Math.abs(c.lift)));
  assert.ok(Math.abs(hi - largest) < 1e-12 && hi < 0.2, `domain ±${hi}`);
  // Rows that are all alike still get a readable domain (not ±0), and ratios beyond 8× are clamped.
  assert.deepEqual(liftDomain(withLift(rows(0, { a: [0.5, 0.5], b: [0.5, 0.5] }))), [-0.1, 0.1]);
  assert.deepEqual(liftDomain(withLift(rows(0, { a: [0.999, 0.001], b: [0.001, 0.999] }))), [-3, 3]);
});

test('the spec colours by lift around 1×, prints the fraction, and shows both in the tooltip', () => {
  const spec = assignmentSpec(rows(0, { en: [0.8, 0.2], de: [0.6, 0.4] }), 't', ['s'], 'language') as unknown as {
    title: { subtitle: string[] };
    data: { values: { lift: number }[] };
    spec: { layer: { encoding: { color: { field?: string; scale?: { domain: number[]; domainMid: number; clamp: boolean } }; text?: { field: string }; tooltip?: { field: string }[] } }[] };
  };
  const [rect, text] = spec.spec.layer;
  assert.equal(rect!.encoding.color.field, 'lift');
  assert.equal(rect!.encoding.color.scale!.domainMid, 0);
  // The largest departure: expert 1 takes 0.2 of en against its mean 0.3.
  assert.ok(Math.abs(rect!.encoding.color.scale!.domain[1]! - Math.log2(0.3 / 0.2)) < 1e-12);
  assert.equal(text!.encoding.text!.field, 'fraction');
  assert.deepEqual(rect!.encoding.tooltip!.map((t) => t.field), ['layer', 'value', 'expert', 'fraction', 'mean', 'tokens']);
  assert.ok(spec.title.subtitle.at(-1)!.includes('over languages'));
  assert.equal(spec.data.values.length, 4);
});
