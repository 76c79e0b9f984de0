import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../../runtime/cli/main.js';
import { tempCache } from './helpers.js';

async function capture(fn: () => Promise<number>): Promise<{ status: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  try {
    return { status: await fn(), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const moe = (source: string) => `data mine {\n  source ${source}\n  tokenizer gpt2\n  context 8\n  valid 20%\n  label lang\n}\n\nmodel m {\n  layers 1\n  width 16\n  heads 2\n}\n\ntrain {\n  steps 1\n  batch 2\n}\n`;

test('moec data stats FILE.moe prepares its data sets and prints tokens per label', async () => {
  const t = tempCache();
  try {
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify(i % 2 ? { text: `Das ist der Satz Nummer ${i}, mit Umlauten: Größe.`, lang: 'de' } : { text: `This is sentence number ${i}, in plain English.`, lang: 'en' }));
    writeFileSync(join(t.dir, 'd.jsonl'), lines.join('\n'));
    writeFileSync(join(t.dir, 'p.moe'), moe('jsonl "d.jsonl"'));
    const r = await capture(() => main(['data', 'stats', join(t.dir, 'p.moe')]));
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /^mine \(jsonl, gpt2\): train \d+ documents \/ \d+ tokens, valid \d+ documents/m);
    assert.match(r.out, /lang\s+de\s+15\s+\d+\s+\d+\s+[\d.]+\n\s+lang\s+en\s+15/);
    const perByte = (v: string) => { const m = new RegExp(`lang\\s+${v}\\s+\\d+\\s+\\d+\\s+\\d+\\s+([\\d.]+)`).exec(r.out)!; return Number(m[1]); };
    assert.ok(perByte('en') > perByte('de'), 'English packs more bytes into a GPT-2 token than German');
  } finally { t.done(); }
});

test('moec data: a JSONL line without the label field is reported with file and line, exit 1', async () => {
  const t = tempCache();
  try {
    writeFileSync(join(t.dir, 'd.jsonl'), '{"text": "a", "lang": "en"}\n{"text": "b"}\n');
    writeFileSync(join(t.dir, 'p.moe'), moe('jsonl "d.jsonl"'));
    const r = await capture(() => main(['data', 'stats', join(t.dir, 'p.moe')]));
    assert.equal(r.status, 1);
    assert.match(r.err, new RegExp(`${join(t.dir, 'd.jsonl')}:2: error: line 2 has no label field 'lang'`));
    assert.doesNotMatch(r.err, /at .*\.js:\d+/, 'no stack trace');
    const u = await capture(() => main(['data', 'fetch', 'wikipedia']));
    assert.equal(u.status, 1);
    assert.match(u.err, /unknown data source 'wikipedia'\n {2}hint: built-in sources: libreoffice-help, brown, fortunes, sotu, moby-dick, udhr, or all/);
  } finally { t.done(); }
});
