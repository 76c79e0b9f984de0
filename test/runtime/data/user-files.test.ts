import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { readFileSource } from '../../../runtime/data/sources/user-files.js';
import { rejectsUser, tempCache } from './helpers.js';

const spec = (kind: 'text' | 'folder' | 'jsonl' | 'parquet', path: string, labelField: string | null = null, textField = 'text') => ({ kind, path, textField, labelField });

test('a missing path names the path and the source line to fix', async () => {
  const t = tempCache();
  try {
    const p = join(t.dir, 'nope.txt');
    await rejectsUser(() => readFileSource(spec('text', p)), new RegExp(`^${p}: error: ${p} does not exist`), /hint: check the path in the data set's `source text "\.\.\."` line/);
    await rejectsUser(() => readFileSource(spec('folder', join(t.dir, 'none'))), /does not exist/);
  } finally { t.done(); }
});

test('an empty file is an error naming it', async () => {
  const t = tempCache();
  try {
    for (const kind of ['text', 'jsonl', 'parquet'] as const) {
      const p = join(t.dir, `empty.${kind}`);
      writeFileSync(p, '');
      await rejectsUser(() => readFileSource(spec(kind, p)), new RegExp(`${p}: error: ${p} is empty`));
    }
    const blank = join(t.dir, 'blank.txt');
    writeFileSync(blank, ' \n\n \n');
    await rejectsUser(() => readFileSource(spec('text', blank)), /holds only white space/);
  } finally { t.done(); }
});

test('a text file: paragraphs are documents', async () => {
  const t = tempCache();
  try {
    const p = join(t.dir, 'a.txt');
    writeFileSync(p, 'First paragraph\nstill first.\n\nSecond.\n\n\n\nThird.\n');
    const docs = await readFileSource(spec('text', p));
    assert.deepEqual(docs.map((d) => d.text), ['First paragraph\nstill first.', 'Second.', 'Third.']);
    assert.equal(new Set(docs.map((d) => d.id)).size, 3);
  } finally { t.done(); }
});

test('a non-UTF-8 file is an error naming file, line and column', async () => {
  const t = tempCache();
  try {
    const p = join(t.dir, 'latin1.txt');
    writeFileSync(p, Buffer.concat([Buffer.from('ok\ncaf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    await rejectsUser(() => readFileSource(spec('text', p)), new RegExp(`^${p}:2:4: error: .*byte 0xe9 at line 2, column 4`), /iconv/);
    const dir = join(t.dir, 'folder');
    mkdirSync(join(dir, 'en'), { recursive: true });
    writeFileSync(join(dir, 'en', 'bin.dat'), Buffer.from([0x00, 0xff, 0xfe]));
    await rejectsUser(() => readFileSource(spec('folder', dir)), /bin\.dat:1:2: error: .* is not UTF-8/);
  } finally { t.done(); }
});

test('a folder: sub-folder names are label values; a file outside a sub-folder is an error', async () => {
  const t = tempCache();
  try {
    const dir = join(t.dir, 'langs');
    mkdirSync(join(dir, 'en', 'deep'), { recursive: true });
    mkdirSync(join(dir, 'de'), { recursive: true });
    writeFileSync(join(dir, 'en', 'a.txt'), 'Hello there.');
    writeFileSync(join(dir, 'en', 'deep', 'b.txt'), 'Deeper.');
    writeFileSync(join(dir, 'de', 'a.txt'), 'Hallo.');
    writeFileSync(join(dir, 'de', '.hidden'), 'skipped');
    const docs = await readFileSource(spec('folder', dir, 'language'));
    assert.deepEqual(docs.map((d) => [d.id, d.labels.language, d.text]), [['de/a.txt', 'de', 'Hallo.'], ['en/a.txt', 'en', 'Hello there.'], ['en/deep/b.txt', 'en', 'Deeper.']]);
    writeFileSync(join(dir, 'stray.txt'), 'x');
    await rejectsUser(() => readFileSource(spec('folder', dir, 'language')), /stray\.txt is not in a sub-folder, so it has no 'language' value/, /move it into a sub-folder/);
  } finally { t.done(); }
});

test('JSONL: records with text and label; bad lines are errors with line and column', async () => {
  const t = tempCache();
  try {
    const p = join(t.dir, 'd.jsonl');
    writeFileSync(p, '{"body": "One.", "lang": "en"}\n\n{"body": "Zwei.", "lang": "de", "id": 7}\n');
    const docs = await readFileSource(spec('jsonl', p, 'lang', 'body'));
    assert.deepEqual(docs.map((d) => [d.text, d.labels.lang]), [['One.', 'en'], ['Zwei.', 'de']]);
    assert.equal(docs[1]!.id, 'id:7');

    writeFileSync(p, '{"text": "a", "label": "x"}\n{"text": "b", "label": }\n');
    await rejectsUser(() => readFileSource(spec('jsonl', p, 'label')), new RegExp(`^${p}:2:24: error: line 2 is not JSON: unexpected "}" at column 24`), /one JSON object/);

    writeFileSync(p, '{"text": "a", "label": "x"}\n{"text": "b", "lang": "y"}\n');
    await rejectsUser(() => readFileSource(spec('jsonl', p, 'label')), new RegExp(`^${p}:2: error: line 2 has no label field 'label'`), /fields are: text, lang/);

    writeFileSync(p, '{"body": "a"}\n');
    await rejectsUser(() => readFileSource(spec('jsonl', p)), new RegExp(`^${p}:1: error: line 1 has no text field 'text'`), /set `text FIELD`/);

    writeFileSync(p, '["a"]\n');
    await rejectsUser(() => readFileSource(spec('jsonl', p)), /line 1 is a list, not a JSON object/);
  } finally { t.done(); }
});

test('Parquet: text and label columns; a missing column lists the columns', async () => {
  const t = tempCache();
  try {
    const p = join(t.dir, 'd.parquet');
    const buf = parquetWriteBuffer({ columnData: [
      { name: 'content', data: ['Alpha text.', 'Beta text.', 'Gamma.'], type: 'STRING' },
      { name: 'topic', data: ['a', 'b', 'a'], type: 'STRING' },
    ] });
    writeFileSync(p, new Uint8Array(buf));
    const docs = await readFileSource(spec('parquet', p, 'topic', 'content'));
    assert.deepEqual(docs.map((d) => [d.text, d.labels.topic]), [['Alpha text.', 'a'], ['Beta text.', 'b'], ['Gamma.', 'a']]);
    await rejectsUser(() => readFileSource(spec('parquet', p, 'lang', 'content')), /has no label column 'lang'/, /its columns are: content, topic/);
    const notParquet = join(t.dir, 'x.parquet');
    writeFileSync(notParquet, 'just text');
    await rejectsUser(() => readFileSource(spec('parquet', notParquet)), /is not a Parquet file/);
  } finally { t.done(); }
});
