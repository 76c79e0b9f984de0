// Thousands of seeded mutations of every pipeline: parsing, resolving, validating and expanding
// must always come back with positioned diagnostics, never an exception (test/grammar/fuzzer.ts).
// `npm run fuzz` runs the same fuzzer longer, and through the real CLI.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pipelineFiles } from '../compiler/frontend/helpers.js';
import { fuzzFrontEnd } from './fuzzer.js';

test('3,000 mutations of every pipeline give positioned diagnostics, no internal error or stack trace, each within 5 s', () => {
  const files = pipelineFiles();
  // A generous bound on a shared 2-core machine: what it catches is quadratic (or worse) checking.
  const s = fuzzFrontEnd(files, 3000, 1234, { timeBoundMs: 5000 });
  const shown = s.findings.slice(0, 3).map((f) => `${f.problem}\n--- mutation of ${f.file}:\n${f.mutant.slice(0, 2000)}`).join('\n\n');
  assert.equal(s.findings.length, 0, shown);
  assert.ok(s.mutants >= 3000);
  assert.ok(s.withErrors > s.mutants / 4, `${s.withErrors} of ${s.mutants} mutations had errors`);
});
