// Issue 21, data input: nothing a user points a source at may crash, hang, read without bound or
// leak a library's internals; every error names the file (and line where there is one).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { fetchEach, fetchSource, type SourceSummary } from '../../../runtime/data/fetch.js';
import { jsonErrorOffset } from '../../../runtime/data/json-error.js';
import { prepareDataset } from '../../../runtime/data/prepare.js';
import { fileSourceChecksum, MAX_FILE_BYTES, readFileSource } from '../../../runtime/data/sources/user-files.js';
import { formatLabelStats } from '../../../runtime/data/stats.js';
import type { PreparedText } from '../../../runtime/data/types.js';
import { main } from '../../../runtime/cli/main.js';
import { dataSet, rejectsUser, tempCache } from './helpers.js';

const spec = (kind: 'text' | 'folder' | 'jsonl' | 'parquet', path: string, labelField: string | null = null) => ({ kind, path, textField: 'text', labelField });

test('the JSON error locator keeps its own stack: 12,000 and 200,000 nested brackets', () => {
  assert.equal(jsonErrorOffset('['.repeat(12000)), 12000);
  assert.equal(jsonErrorOffset(`${'['.repeat(200000)}${']'.repeat(200000)}`), -1);
  assert.equal(jsonErrorOffset(`${'{"a":'.repeat(50000)}1${'}'.repeat(49999)}`), 50000 * 5 + 1 + 49999);
  // The grammar is the same as before: objects, strings, escapes, numbers, literals.
  const cases: [string, number][] = [
    ['{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]}', -1], ['{"a" 1}', 5], ['[1,]', 3], ['{"a":1,}', 7],
    ['"\\q"', 2], ['[01]', 2], ['{} x', 3], ['', 0], ['{"a":"\x01"}', 6], ['[1 2]', 3], ['{1:2}', 1],
  ];
  for (const [s, at] of cases) assert.equal(jsonErrorOffset(s), at, s);
  // JSON.parse agrees on validity.
  for (const [s, at] of cases) {
    let ok = true;
    try { JSON.parse(s); } catch { ok = false; }
    assert.equal(ok, at === -1, s);
  }
});

test('a JSONL line of 12,000 [ is an error at its file, line and column, not a stack trace', async () => {
  const t = tempCache();
  try {
    const p = join(t.dir, 'deep.jsonl');
    writeFileSync(p, `{"text": "fine"}\n${'['.repeat(12000)}\n`);
    await rejectsUser(() => readFileSource(spec('jsonl', p)), new RegExp(`^${p}:2:12001: error: line 2 is not JSON: the line ends too early at column 12001`));
    // Valid JSON nested deeper than JSON.parse goes: still a positioned error, not 'unexpected undefined'.
    const q = join(t.dir, 'deeper.jsonl');
    writeFileSync(q, `${'['.repeat(200_000)}${']'.repeat(200_000)}\n`);
    await rejectsUser(() => readFileSource(spec('jsonl', q)), new RegExp(`^${q}:1: error: line 1 (is JSON nested too deeply to read|is a list, not a JSON object)`));
  } finally { t.done(); }
});

test('devices, pipes and over-large files are refused before any read', { timeout: 20_000 }, async () => {
  const t = tempCache();
  try {
    for (const kind of ['text', 'jsonl', 'parquet'] as const) {
      await rejectsUser(() => readFileSource(spec(kind, '/dev/zero')), /^\/dev\/zero: error: \/dev\/zero is a character device; source \w+ reads only a regular file/);
    }
    await rejectsUser(() => fileSourceChecksum(spec('text', '/dev/zero')), /is a character device/);
    await rejectsUser(() => readFileSource(spec('folder', '/dev/null')), /is a character device; source folder reads only a regular file or folder/);
    const fifo = join(t.dir, 'pipe.txt');
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO with no writer blocks forever: this returns at once or the test times out.
    await rejectsUser(() => readFileSource(spec('text', fifo)), /is a named pipe \(FIFO\)/);
    await rejectsUser(() => fileSourceChecksum(spec('text', fifo)), /is a named pipe \(FIFO\)/);
    // A sparse file past the bound: refused from its size, nothing read.
    const big = join(t.dir, 'big.txt');
    writeFileSync(big, '');
    truncateSync(big, MAX_FILE_BYTES + 1);
    await rejectsUser(() => readFileSource(spec('text', big)), /is 256 MiB, more than the 256 MiB moec reads from one file/, /split it into several files under one folder/);
    await rejectsUser(() => fileSourceChecksum(spec('text', big)), /more than the 256 MiB/);
  } finally { t.done(); }
});

test("a label named '__proto__' is an ordinary label in preparation and in data stats", async () => {
  const t = tempCache();
  try {
    const p = join(t.dir, 'proto.jsonl');
    writeFileSync(p, Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `sentence number ${i} of the corpus`, ['__proto__']: `v${i % 2}` })).join('\n'));
    const docs = await readFileSource(spec('jsonl', p, '__proto__'));
    assert.deepEqual(new Set(docs.map((d) => d.labels['__proto__'])), new Set(['v0', 'v1']));
    const data = await prepareDataset(dataSet('jsonl', { path: p, label: '__proto__', labels: ['__proto__'], valid: 0.2 }), {}) as PreparedText;
    assert.deepEqual(data.stats.perLabel.map((r) => [r.label, r.value, r.documents]), [['__proto__', 'v0', 20], ['__proto__', 'v1', 20]]);
    assert.match(formatLabelStats(data.stats.perLabel, 'bytes'), /__proto__\s+v0\s+20/);
    // A record without the field: reported as missing, not as 'an object' (Object.prototype).
    const q = join(t.dir, 'missing.jsonl');
    writeFileSync(q, '{"text": "a"}\n');
    await rejectsUser(() => readFileSource(spec('jsonl', q, 'constructor')), new RegExp(`^${q}:1: error: line 1 has no label field 'constructor'`));
  } finally { t.done(); }
});

test('a file of control bytes and a file of one long line: errors that name the file', async () => {
  const t = tempCache();
  try {
    const c = join(t.dir, 'control.txt');
    writeFileSync(c, Buffer.from(Array.from({ length: 4000 }, (_, i) => [1, 2, 3, 7, 8, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f][i % 10]!)));
    await rejectsUser(() => readFileSource(spec('text', c)), new RegExp(`^${c}: error: ${c} has no text left after removing control characters`));
    const l = join(t.dir, 'long.txt');
    writeFileSync(l, 'word '.repeat(400_000));
    await rejectsUser(() => prepareDataset(dataSet('text', { path: l }), {}), new RegExp(`^${l}: error: data set 'd' \\(source text ${l}\\) has 1 document, and none fell into the validation split`), /separate paragraphs with blank lines/);
  } finally { t.done(); }
});

test('Parquet problems say what is wrong with the file in its terms, not the reader\'s', async () => {
  const t = tempCache();
  try {
    const good = new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: ['hello', 'world'], type: 'STRING' }] }));
    const cases: [string, Uint8Array, RegExp][] = [
      ['notpq', new TextEncoder().encode('just some text, not a table'), /is not a Parquet file: it does not end with the Parquet marker 'PAR1'/],
      ['tiny', new Uint8Array([1, 2, 3]), /is not a Parquet file/],
      ['cut', good.slice(0, good.length - 10), /is not a Parquet file: .*a file cut short/],
      ['footer', (() => { const b = good.slice(); for (let i = b.length - 40; i < b.length - 8; i++) b[i]! ^= 0x33; return b; })(), /is damaged: its metadata \(the footer\) cannot be decoded|cannot read the rows of/],
    ];
    for (const [name, bytes, want] of cases) {
      const p = join(t.dir, `${name}.parquet`);
      writeFileSync(p, bytes);
      const text = await rejectsUser(() => readFileSource(spec('parquet', p)), new RegExp(`^${p}: error: `), want, /hint: /);
      assert.doesNotMatch(text, /thrift|footer != PAR1|undefined|parquet file (invalid|is too short)|unhandled type/i, text);
    }
  } finally { t.done(); }
});

test('fetching several sources goes on past a failure and returns every failure', async () => {
  const seen: string[] = [];
  const fake: typeof fetchSource = async (name, log, command) => {
    seen.push(name);
    if (name === 'fine') return { name } as SourceSummary;
    return fetchSource(name, log, command); // the real lookup: an unknown source
  };
  const got: string[] = [];
  const failed = await fetchEach(['nope', 'fine', 'also-nope'], (s) => got.push(s.name), { fetch: fake, command: 'moec data fetch' });
  assert.deepEqual(seen, ['nope', 'fine', 'also-nope']);
  assert.deepEqual(got, ['fine']);
  assert.deepEqual(failed.map((f) => [f.name, (f.error as Error).message]), [['nope', "unknown data source 'nope'"], ['also-nope', "unknown data source 'also-nope'"]]);
});

test("'moec data stats NAME' answers as data stats", async () => {
  const err: string[] = [];
  const e = console.error;
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  let status: number;
  try {
    status = await main(['data', 'stats', 'b']).catch((x: { format?: () => string }) => { err.push(x.format?.() ?? String(x)); return 1; });
  } finally { console.error = e; }
  assert.equal(status, 1);
  assert.match(err.join('\n'), /^moec data stats: error: unknown data source 'b'\n {2}hint: built-in sources: .*, or a \.moe file/);
});
