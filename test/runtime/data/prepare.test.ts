import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareDataset } from '../../../runtime/data/prepare.js';
import type { PreparedText } from '../../../runtime/data/types.js';
import { dataSet, rejectsUser, tempCache } from './helpers.js';

const words = ['river', 'stone', 'cloud', 'lamp', 'field', 'glass', 'tower', 'bird'];
function makeFolder(dir: string, perLabel: Record<string, number>): void {
  for (const [label, n] of Object.entries(perLabel)) {
    mkdirSync(join(dir, label), { recursive: true });
    for (let i = 0; i < n; i++) writeFileSync(join(dir, label, `doc${i}.txt`), `${label} ${i}: ${words.map((w, k) => words[(k * 3 + i) % words.length]).join(' ')}.`);
  }
}

async function prepareText(...args: Parameters<typeof prepareDataset>): Promise<PreparedText> {
  const d = await prepareDataset(...args);
  assert.equal(d.kind, 'text');
  return d as PreparedText;
}

test('a folder data set: split by document, grouped by label, EOT after each document', async () => {
  const t = tempCache();
  try {
    const dir = join(t.dir, 'data');
    makeFolder(dir, { en: 30, de: 20 });
    const ds = dataSet('folder', { path: dir, label: 'language', labels: ['language'], valid: 0.25 });
    const d = await prepareText(ds);
    assert.deepEqual(d.labels, [{ name: 'language', values: ['de', 'en'] }]);
    assert.equal(d.stats.documents.train + d.stats.documents.valid, 50);
    assert.ok(d.stats.documents.valid > 3 && d.stats.documents.valid < 25, `valid ${d.stats.documents.valid}`);
    for (const s of [d.train, d.valid]) {
      assert.equal(s.docOffsets.length, s.docIds.length + 1);
      assert.equal(s.docOffsets[s.docIds.length], s.tokens.length);
      for (let i = 0; i < s.docIds.length; i++) {
        assert.equal(s.tokens[s.docOffsets[i + 1]! - 1], 0, 'each document ends with EOT (0 for bytes)');
        const text = Buffer.from(s.tokens.subarray(s.docOffsets[i]!, s.docOffsets[i + 1]! - 1)).toString();
        assert.equal(d.labels[0]!.values[s.docLabels.language![i]!], s.docIds[i]!.split('/')[0]);
        assert.match(text, new RegExp(`^${s.docIds[i]!.split('/')[0]} \\d+:`));
      }
      assert.equal(s.groupOffsets.length, 3, 'two groups: de then en');
      assert.deepEqual(Array.from(s.groupLabels.language!), [0, 1]);
    }
    const perLabel = Object.fromEntries(d.stats.perLabel.map((r) => [r.value, r]));
    assert.equal(perLabel.de!.documents + perLabel.en!.documents, 50);
    assert.equal(perLabel.en!.tokens, perLabel.en!.bytes, 'bytes tokenizer: one token per byte');
  } finally { t.done(); }
});

test('the split is stable: adding documents does not move the others', async () => {
  const t = tempCache();
  try {
    const dir = join(t.dir, 'data');
    makeFolder(dir, { a: 40 });
    const ds = dataSet('folder', { path: dir, label: 'topic', labels: ['topic'], valid: 0.3 });
    const before = await prepareText(ds);
    makeFolder(dir, { a: 60 });
    const after = await prepareText(ds);
    assert.notEqual(after.cacheDir, before.cacheDir, 'changed files give a new cache entry');
    for (const id of before.valid.docIds) assert.ok(after.valid.docIds.includes(id), `${id} stayed in valid`);
    for (const id of before.train.docIds) assert.ok(after.train.docIds.includes(id), `${id} stayed in train`);
  } finally { t.done(); }
});

test('limit caps the characters, sampling across labels', async () => {
  const t = tempCache();
  try {
    const dir = join(t.dir, 'data');
    makeFolder(dir, { x: 50, y: 50 });
    const ds = dataSet('folder', { path: dir, label: 'l', labels: ['l'], valid: 0.1, limit: 1500 });
    const d = await prepareText(ds);
    assert.equal(d.stats.chars, 1500);
    assert.deepEqual(d.labels[0]!.values, ['x', 'y'], 'both labels are sampled');
  } finally { t.done(); }
});

test('the cache is reused, and a corrupt or partial entry is rebuilt, never used', async () => {
  const t = tempCache();
  try {
    const dir = join(t.dir, 'data');
    makeFolder(dir, { a: 20, b: 20 });
    const ds = dataSet('folder', { path: dir, label: 'l', labels: ['l'], tokenizer: 'gpt2', vocab: 50257 });
    const logs: string[] = [];
    const first = await prepareText(ds, { log: (m) => logs.push(m) });
    assert.ok(logs.some((m) => m.startsWith('tokenising')));
    assert.equal(first.eot, 50256);
    logs.length = 0;
    const again = await prepareText(ds, { log: (m) => logs.push(m) });
    assert.equal(logs.length, 0, 'read from the cache');
    assert.deepEqual(again.train.tokens, first.train.tokens);

    // Flip one token on disk: the checksum catches it and the entry is rebuilt.
    const file = join(first.cacheDir, 'train.u32');
    const bytes = readFileSync(file);
    bytes[8] ^= 0xff;
    writeFileSync(file, bytes);
    const rebuilt = await prepareText(ds, { log: (m) => logs.push(m) });
    assert.ok(logs.some((m) => /damaged \(train\.u32 does not match its checksum\)/.test(m)), logs.join('\n'));
    assert.deepEqual(rebuilt.train.tokens, first.train.tokens);

    // A partial entry (no manifest: the writer died before finishing) is rebuilt too.
    rmSync(join(first.cacheDir, 'manifest.json'));
    logs.length = 0;
    const again2 = await prepareText(ds, { log: (m) => logs.push(m) });
    assert.ok(logs.some((m) => /damaged \(no readable manifest/.test(m)), logs.join('\n'));
    assert.deepEqual(again2.valid.tokens, first.valid.tokens);
    assert.deepEqual(readdirSync(join(t.cache, 'prepared')).filter((n) => n.includes('.tmp-')), [], 'no temporary folders left');
  } finally { t.done(); }
});

test('too few documents for a validation split is a clear error', async () => {
  const t = tempCache();
  try {
    const p = join(t.dir, 'one.txt');
    writeFileSync(p, 'A single paragraph without blank lines.\nAnother line of it.\n');
    await rejectsUser(() => prepareDataset(dataSet('text', { path: p, valid: 0.1 })), new RegExp(`^${p}: error: data set 'd' \\(source text ${p}\\) has 1 document, and none fell into the validation split`), /separate paragraphs with blank lines/);
    const ok = await prepareText(dataSet('text', { path: p, valid: 0 }));
    assert.equal(ok.stats.documents.train, 1);
    assert.equal(ok.valid.tokens.length, 0);
  } finally { t.done(); }
});
