// Issue 21: checking a long sweep list stays linear in its length. Compares the time for N and 4N
// values in one process as a ratio (linear ~4, quadratic ~16), so the test holds on a slow or
// loaded machine where an absolute bound would not.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { pipelinesDir } from './helpers.js';

const quick = readFileSync(path.join(pipelinesDir, 'quickstart.moe'), 'utf8');
const FILE = path.join(pipelinesDir, 'sweep-linear-test.moe');

function withValues(n: number): string {
  const vals = Array.from({ length: n }, (_, i) => String(1000 + i)).join(', ');
  const text = quick.replace('model.moe.top in [1, 2]', `train.steps in [${vals}]`);
  assert.notEqual(text, quick, 'quickstart.moe no longer has the sweep line this test replaces');
  return text;
}

function msToCheck(n: number): number {
  const text = withValues(n);
  const t0 = performance.now();
  const r = loadPipeline(FILE, { readFile: (f) => (path.resolve(f) === FILE ? text : readFileSync(f, 'utf8')) });
  const ms = performance.now() - t0;
  assert.ok(r.ok, r.diagnostics.map((d) => d.message).join('\n'));
  assert.equal(r.trials.length, n);
  return ms;
}

test('checking a sweep of 4N values takes about 4x the time of N values, not 16x', () => {
  const N = 200;
  msToCheck(N); // warm the JIT so the first figure is not inflated
  const small = Math.min(msToCheck(N), msToCheck(N));
  const large = msToCheck(4 * N);
  const ratio = large / small;
  assert.ok(ratio < 9, `4x the values took ${ratio.toFixed(1)}x the time (${small.toFixed(0)} ms -> ${large.toFixed(0)} ms): sweep checking is no longer linear`);
});
