import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entropyBits, jsdBits, perSeedJsd, specialisation, specialisationTable } from '../../../runtime/report/specialisation.js';

test('JS divergence: 0 for equal distributions, 1 bit for disjoint ones, symmetric', () => {
  assert.equal(jsdBits([0.5, 0.5], [0.5, 0.5]), 0);
  assert.ok(Math.abs(jsdBits([1, 0], [0, 1]) - 1) < 1e-12);
  assert.ok(Math.abs(jsdBits([0.9, 0.1], [0.2, 0.8]) - jsdBits([0.2, 0.8], [0.9, 0.1])) < 1e-15);
});

test('entropy of expert use: log2(E) when uniform, 0 for one expert', () => {
  assert.ok(Math.abs(entropyBits([0.25, 0.25, 0.25, 0.25]) - 2) < 1e-12);
  assert.equal(entropyBits([1, 0, 0, 0]), 0);
});

test('a layer whose labels use different experts specialises; counts are normalised per label', () => {
  const s = specialisation(1, { en: [100, 0, 0, 0], de: [0, 5, 0, 0], fr: [0, 0, 40, 40] });
  assert.equal(s.layer, 1);
  assert.ok(Math.abs(s.meanJsd - 1) < 1e-12, `${s.meanJsd}`);
  assert.ok(Math.abs(s.meanEntropy - 1 / 3) < 1e-12);
  assert.equal(s.maxEntropy, 2);
  const none = specialisation(0, { en: [1, 1, 1, 1], de: [3, 3, 3, 3] });
  assert.equal(none.meanJsd, 0);
});

test('per-seed JS divergence: two seeds that specialise with swapped expert numbers stay at 1 bit each', () => {
  const rec = (a: number[], b: number[]) => ({ experts: [{ data: 'd.valid', label: 'lang', layers: [{ layer: 0, counts: { en: a, de: b } }] }] });
  const seeds = [rec([10, 0], [0, 10]), rec([0, 10], [10, 0])];
  assert.deepEqual(perSeedJsd(seeds, 'd.valid', 'lang').get(0), [1, 1]);
  // Summed first, the two seeds cancel out: both languages use both experts alike.
  assert.equal(specialisation(0, { en: [10, 10], de: [10, 10] }).meanJsd, 0);
  const table = specialisationTable([specialisation(0, { en: [10, 10], de: [10, 10] })], 'lang', perSeedJsd(seeds, 'd.valid', 'lang')).join('\n');
  assert.match(table, /\| 0\.0000 \|.*\| 1\.0000 ± 0\.0000 \(n=2\) \|/);
});
