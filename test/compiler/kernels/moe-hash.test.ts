import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashRouter } from '../../../compiler/routing/hash.js';
import type { MoeRouterShape } from '../../../compiler/reference/moe.js';
import { check } from './moe-chain.js';

// Hash routing (Roller et al. 2021): the whole MoE layer chain on the GPU against the references,
// on odd shapes, with the hash router's selection kernel in front.

const base = { mode: 'hash', score: 'softmax', normalize: false, salt: 0x6d6f6500, seqLen: 1, rep: 1, balance: 0, zloss: 0 } as const;

/** Experts of each position's token, grouped by token id: every position of an id must agree. */
function byToken(tokens: Uint32Array, sel: Uint32Array, K: number): Map<number, string> {
  const seen = new Map<number, string>();
  tokens.forEach((id, n) => {
    const experts = [...sel.subarray(n * K, n * K + K)].join();
    assert.equal(seen.get(id) ?? experts, experts, `token id ${id} at position ${n} went elsewhere than its other positions`);
    seen.set(id, experts);
  });
  return seen;
}

test('hash router, top 1 of 7, 37 tokens, width 13: the chain matches the references; an id always takes the same expert, gate 1', async () => {
  const { got, tokens } = await check({ ...base, tokens: 37, width: 13, experts: 7, top: 1, ffn: 19, capacity: 37 });
  byToken(tokens, got.sel, 1);
  assert.ok(got.gate.every((g) => g === 1));
});

test('hash router, top 3 of 5 (distinct, gates 1/3), capacity 9 drops: matches the references', async () => {
  const { got, tokens, d } = await check({ ...base, act: 'relu', tokens: 41, width: 9, experts: 5, top: 3, ffn: 6, capacity: 9 });
  for (let n = 0; n < 41; n++) assert.equal(new Set(got.sel.subarray(3 * n, 3 * n + 3)).size, 3, `token ${n}: 3 distinct experts`);
  byToken(tokens, got.sel, 3);
  assert.ok(d.offsets[5]! < 123, 'some assignments were dropped');
});

test('hash router reference: fixed by token id and layer alone, not by seed or step; near-uniform over a vocabulary', () => {
  const s: MoeRouterShape = { ...base, tokens: 12000, experts: 8, top: 1 };
  const tokens = Uint32Array.from({ length: 12000 }, (_, i) => i);
  const a = hashRouter.reference(s, { tokens, seed: 1, step: 0 });
  assert.deepEqual(hashRouter.reference(s, { tokens, seed: 9, step: 77 }).sel, a.sel, 'the seed and step do not enter');
  const other = hashRouter.reference({ ...s, salt: s.salt + 1 }, { tokens }).sel;
  assert.ok(other.some((e, i) => e !== a.sel[i]), 'another MoE layer hashes differently');
  const counts = new Array<number>(8).fill(0);
  for (const e of a.sel) counts[e]!++;
  for (const c of counts) assert.ok(Math.abs(c - 1500) < 150, `ids per expert ${counts.join(', ')}: near 1500 each`);
});
