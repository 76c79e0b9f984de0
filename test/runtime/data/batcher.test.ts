import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher, IGNORE, sequentialBatchCount, sequentialBatches } from '../../../runtime/data/batcher.js';
import type { LabelSpace, PreparedSplit } from '../../../runtime/data/types.js';

const EOT = 0;
const labels: LabelSpace[] = [{ name: 'language', values: ['en', 'de', 'fr'] }];

/** A split of label groups; token values encode (group, position) so windows can be traced back. */
function split(groupLengths: number[], groupLabel: number[]): PreparedSplit {
  const tokens: number[] = [];
  const groupOffsets = [0];
  groupLengths.forEach((n, g) => {
    for (let i = 0; i < n - 1; i++) tokens.push(1000 * (g + 1) + i);
    tokens.push(EOT);
    groupOffsets.push(tokens.length);
  });
  return {
    tokens: Uint32Array.from(tokens), docOffsets: Uint32Array.from(groupOffsets), docIds: groupLengths.map((_, g) => `doc${g}`),
    docLabels: { language: Uint32Array.from(groupLabel) }, groupOffsets: Uint32Array.from(groupOffsets), groupLabels: { language: Uint32Array.from(groupLabel) },
  };
}

const groupOf = (tok: number) => Math.floor(tok / 1000) - 1;

test('training windows stay inside one label group, targets are the next tokens, labels travel along', () => {
  const s = split([500, 40, 7, 300], [0, 1, 2, 1]);
  const T = 16;
  const b = new Batcher(s, labels, EOT, { context: T, batch: 32, seed: 1 });
  for (let step = 0; step < 20; step++) {
    const batch = b.at(step);
    assert.equal(batch.inputs.length, 32 * T);
    let count = 0;
    for (let w = 0; w < 32; w++) {
      const inp = batch.inputs.subarray(w * T, (w + 1) * T);
      const tgt = batch.targets.subarray(w * T, (w + 1) * T);
      const g = groupOf(inp[0]!);
      assert.equal(batch.labels.language![w], s.groupLabels.language![g]);
      for (let i = 0; i < T; i++) {
        if (tgt[i] === IGNORE) { assert.equal(inp[i], EOT, 'padding input is EOT'); continue; }
        count++;
        if (i + 1 < T && tgt[i] !== EOT) assert.equal(inp[i + 1], tgt[i], 'targets are the inputs shifted by one');
        if (inp[i] !== EOT) assert.equal(groupOf(inp[i]!), g, 'one group per window');
        if (tgt[i] !== EOT) assert.equal(groupOf(tgt[i]!), g);
      }
    }
    assert.equal(batch.targetCount, count);
  }
  // The 7-token group is shorter than T+1: its window is padded, 6 real targets.
  let sawShort = false;
  for (let step = 0; step < 200 && !sawShort; step++) {
    const batch = b.at(step);
    for (let w = 0; w < 32; w++) if (groupOf(batch.inputs[w * T]!) === 2) {
      sawShort = true;
      assert.equal(batch.targets.subarray(w * T, (w + 1) * T).filter((x) => x !== IGNORE).length, 6);
    }
  }
  assert.ok(sawShort);
});

test('batches are a function of (seed, step): a restored state continues with the same batches', () => {
  const s = split([400, 400], [0, 1]);
  const a = new Batcher(s, labels, EOT, { context: 8, batch: 4, seed: 5 });
  const run = (x: Batcher, n: number) => Array.from({ length: n }, () => Array.from(x.next().inputs));
  const straight = run(a, 6);
  const b = new Batcher(s, labels, EOT, { context: 8, batch: 4, seed: 5 });
  run(b, 3);
  const saved = JSON.parse(JSON.stringify(b.state()));
  const c = new Batcher(s, labels, EOT, { context: 8, batch: 4, seed: 5 });
  c.restore(saved);
  assert.deepEqual(run(c, 3), straight.slice(3));
  const other = new Batcher(s, labels, EOT, { context: 8, batch: 4, seed: 6 });
  assert.notDeepEqual(run(other, 1)[0], straight[0]);
  assert.throws(() => other.restore(saved), /batcher state is for seed 5/);
});

test('balanced sampling draws each label value about equally, unbalanced follows the token counts', () => {
  const s = split([2000, 100, 100], [0, 1, 2]);
  const count = (balance: string | null) => {
    const b = new Batcher(s, labels, EOT, { context: 8, batch: 64, seed: 2, balance });
    const n = [0, 0, 0];
    for (let step = 0; step < 50; step++) for (const l of b.at(step).labels.language!) n[l]!++;
    return n.map((x) => x / (50 * 64));
  };
  const plain = count(null);
  assert.ok(plain[0]! > 0.85, `unbalanced: ${plain}`);
  for (const f of count('language')) assert.ok(Math.abs(f - 1 / 3) < 0.05, `balanced: ${f}`);
  assert.throws(() => new Batcher(s, labels, EOT, { context: 8, batch: 4, seed: 1, balance: 'genre' }), /balance label 'genre'/);
});

test('the sequential pass predicts every token after a group start exactly once', () => {
  const s = split([50, 3, 33, 17], [0, 2, 1, 1]);
  const T = 8, B = 5;
  const seen = new Map<number, number>();
  let batches = 0;
  let windows = 0;
  for (const batch of sequentialBatches({ labels, eot: EOT }, s, T, B)) {
    batches++;
    windows += batch.windows;
    let count = 0;
    for (let w = 0; w < B; w++) for (let i = 0; i < T; i++) {
      const t = batch.targets[w * T + i]!;
      if (t === IGNORE) continue;
      count++;
      assert.ok(w < batch.windows, 'padding windows have no targets');
      // Key each target by its position: (window's group, token value); EOTs by group.
      const g = groupOf(batch.inputs[w * T]!);
      assert.equal(batch.labels.language![w], s.groupLabels.language![g]);
      const key = t === EOT ? -1 - g : t;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    assert.equal(batch.targetCount, count);
  }
  assert.equal(batches, sequentialBatchCount(s, T, B));
  const expected = 50 - 1 + 3 - 1 + 33 - 1 + 17 - 1;
  assert.equal([...seen.values()].reduce((a, b) => a + b, 0), expected);
  assert.ok([...seen.values()].every((n) => n === 1));
  assert.equal(windows, Math.ceil(49 / T) + Math.ceil(2 / T) + Math.ceil(32 / T) + Math.ceil(16 / T));
});
