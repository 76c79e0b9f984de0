import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradCheck, moeConfig, variants } from './moe-helpers.js';

// Finite-difference gradients of MoE variants 18.. of moe-helpers.ts' list: uniform router noise
// and Soft MoE.
for (const [what, o, seed, accumulate] of variants.slice(17)) {
  test(`MoE gradients match finite differences: ${what}`, async () => {
    const { failures, checked, skipped } = await gradCheck(moeConfig(o), seed, accumulate);
    assert.deepEqual(failures, []);
    assert.ok(checked >= 2 * skipped && checked >= 12, `checked ${checked}, skipped ${skipped} (routing changed)`);
  });
}
