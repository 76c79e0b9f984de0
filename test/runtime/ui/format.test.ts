import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  etaSeconds,
  formatCount,
  formatDuration,
  formatFixed,
  progressBar,
  shadeIndex,
  shadeLegend,
  sparkline,
  truncate,
} from '../../../runtime/ui/format.js';

test('durations, counts and fixed numbers print compactly', () => {
  assert.equal(formatDuration(45.4), '45s');
  assert.equal(formatDuration(192), '3m12s');
  assert.equal(formatDuration(3723), '1h02m03s');
  assert.equal(formatDuration(undefined), '-');
  assert.equal(formatDuration(Infinity), '-');
  assert.equal(formatCount(950), '950');
  assert.equal(formatCount(12_345), '12.3k');
  assert.equal(formatCount(4_560_000), '4.56M');
  assert.equal(formatFixed(NaN, 2), 'nan');
  assert.equal(formatFixed(3.14159, 2), '3.14');
});

test('ETA follows the step rate since this process started the trial, resumed or not', () => {
  assert.equal(etaSeconds(100, 1000, 0, 10), 90);
  assert.equal(etaSeconds(600, 1000, 500, 10), 40);
  assert.equal(etaSeconds(500, 1000, 500, 10), undefined);
});

test('truncate marks the cut and keeps the width', () => {
  assert.equal(truncate('unit=sequence top=2', 10), 'unit=sequ…');
  assert.equal(truncate('short', 10), 'short');
  assert.equal(truncate('abc', 0), '');
});

test('progress bars fill in eighths and always have the asked width', () => {
  assert.equal(progressBar(0, 4), '░░░░');
  assert.equal(progressBar(1, 4), '████');
  assert.equal(progressBar(0.5, 4), '██░░');
  assert.equal(progressBar(1 / 16, 4), '▎░░░');
  for (const f of [0, 0.01, 0.33, 0.999, 1, 2, -1]) assert.equal(progressBar(f, 7).length, 7);
});

test('sparklines scale to the series and average long ones into the width', () => {
  assert.equal(sparkline([4, 3, 2, 1], 10), '█▆▃▁');
  assert.equal(sparkline([1, 1, 1], 10), '▁▁▁');
  assert.equal(sparkline([8, 8, 1, 1], 2), '█▁');
  assert.equal(sparkline([2, NaN, 1], 3), '█×▁');
  assert.equal(sparkline(Array.from({ length: 500 }, (_, i) => -i), 40).length, 40);
});

test('load shading is judged against the uniform share, and the legend says so in percent', () => {
  assert.equal(shadeIndex(0.01, 8), 0);
  assert.equal(shadeIndex(0.125, 8), 2);
  assert.equal(shadeIndex(0.5, 8), 4);
  assert.equal(shadeLegend(8), "' '<5% ░<10% ▒<15% ▓<20% █≥20%");
  assert.equal(shadeLegend(16), "' '<2.5% ░<5% ▒<7.5% ▓<10% █≥10%");
});
