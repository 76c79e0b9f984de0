import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradCheck, moeConfig, variants } from './moe-helpers.js';

// Finite-difference gradients of MoE routing variants 1..8 of moe-helpers.ts' list.
for (const [what, o, seed] of variants.slice(0, 8)) {
  test(`MoE gradients match finite differences: ${what}`, async () => {
    const { failures, checked, skipped } = await gradCheck(moeConfig(o), seed);
    assert.deepEqual(failures, []);
    assert.ok(checked >= 2 * skipped && checked >= 12, `checked ${checked}, skipped ${skipped} (routing changed)`);
  });
}

