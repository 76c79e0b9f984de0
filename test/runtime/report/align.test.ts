import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alignExperts, hungarian } from '../../../runtime/report/align.js';
import { assignment } from '../../../runtime/report/charts.js';
import type { TrialData } from '../../../runtime/report/load.js';

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

test('hungarian finds the minimum-cost assignment (against brute force on random matrices)', () => {
  let x = 11;
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % 1000) / 100;
  for (const n of [1, 2, 3, 5, 6]) {
    for (let rep = 0; rep < 5; rep++) {
      const cost = Array.from({ length: n }, () => Array.from({ length: n }, rnd));
      const total = (col: number[]) => col.reduce((a, j, i) => a + cost[i]![j]!, 0);
      const col = hungarian(cost);
      assert.deepEqual([...col].sort((a, b) => a - b), [...Array(n).keys()], 'a permutation');
      const best = Math.min(...permutations(n).map(total));
      assert.ok(Math.abs(total(col) - best) < 1e-9, `n=${n}: ${total(col)} vs best ${best}`);
    }
  }
});

// Seed 1: expert 0 takes English, 1 German, 2 French, 3 a bit of everything.
const seed1: Record<string, number[]> = { en: [80, 5, 5, 10], de: [5, 70, 5, 20], fr: [5, 5, 60, 30] };
// Seed 2 learned the same, with its experts numbered otherwise: its expert e is seed 1's expert perm[e].
const perm = [2, 0, 3, 1];
const seed2 = Object.fromEntries(Object.entries(seed1).map(([v, cs]) => [v, perm.map((p) => cs[p]!)]));

test('alignExperts recovers which expert of another seed is which', () => {
  assert.deepEqual(alignExperts(seed1, seed2), perm);
  assert.deepEqual(alignExperts(seed1, seed1), [0, 1, 2, 3]);
});

test('the heat map sums seeds after matching experts, so a shared specialisation is not blurred', () => {
  const trial = (counts: Record<string, number[]>) => ({ experts: [{ step: 10, data: 'd', label: 'lang', layers: [{ layer: 1, counts }] }] }) as unknown as TrialData;
  const a = assignment([trial(seed1), trial(seed2)], 'd', 'lang');
  assert.equal(a.seeds, 2);
  for (const c of a.cells) assert.equal(c.tokens, 2 * seed1[c.value]![c.expert]!, `${c.value} expert ${c.expert}`);
  const en0 = a.cells.find((c) => c.value === 'en' && c.expert === 0)!;
  assert.ok(Math.abs(en0.fraction - 0.8) < 1e-12);
});
