// Thousands of random mutations of every valid pipeline: parsing, resolving, validating and
// expanding must always come back with diagnostics, never an exception.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPipeline } from '../../compiler/frontend/index.js';
import { readFromDisk } from '../../compiler/frontend/load.js';
import { formatFile } from '../../grammar/format.js';
import { parseSource } from '../../grammar/parse.js';
import { rng } from '../../compiler/reference/random.js';
import { pipelineFiles } from '../compiler/frontend/helpers.js';

const pieces = ['{', '}', '[', ']', '(', ')', ',', ';', '\n', '"', '#', '==', '!=', '5%', '4x', '-1', '0', '1e9', '2.5', 'in', 'when', 'extends', 'import',
  'moe', 'model', 'data', 'train', 'sweep', 'preset', 'evaluate', 'zip', 'seeds', 'baseline', 'dense', 'same', 'total', 'label(', 'router', 'top', 'experts',
  'model.moe.top', 'data.wiki.context', 'wiki.valid', 'by', 'language', 'dropless', 'sequence(prefix 999)', 'cosine(dim 0)', 'x'];

function mutate(text: string, r: () => number): string {
  let t = text;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (t.length + 1));
    const op = Math.floor(r() * 6);
    if (op === 0) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(r() * 5));
    else if (op === 1) t = t.slice(0, at) + String.fromCharCode(32 + Math.floor(r() * 95)) + t.slice(at);
    else if (op === 2) t = t.slice(0, at) + pieces[Math.floor(r() * pieces.length)] + t.slice(at);
    else if (op === 3) {
      const b = Math.floor(r() * t.length);
      const chars = t.split('');
      [chars[at], chars[b]] = [chars[b] ?? '', chars[at] ?? ''];
      t = chars.join('');
    } else if (op === 4) {
      // swap two whitespace-separated tokens
      const words = t.split(/(\s+)/);
      const a = Math.floor(r() * words.length);
      const b = Math.floor(r() * words.length);
      [words[a], words[b]] = [words[b] ?? '', words[a] ?? ''];
      t = words.join('');
    } else {
      // replace a number with another
      t = t.replace(/\d+(\.\d+)?/, () => pieces[13 + Math.floor(r() * 5)]!);
    }
  }
  return t;
}

test('random mutations of every pipeline give diagnostics, never exceptions', () => {
  const files = pipelineFiles();
  const perFile = Math.ceil(4000 / files.length);
  let withErrors = 0;
  let total = 0;
  for (const [fi, file] of files.entries()) {
    const text = readFileSync(file, 'utf8');
    const r = rng(1234 + fi);
    for (let i = 0; i < perFile; i++) {
      const m = mutate(text, r);
      const read = (f: string) => (path.resolve(f) === path.resolve(file) ? m : readFromDisk(f));
      const res = loadPipeline(file, { readFile: read, validateTrials: i % 8 === 0 });
      total++;
      for (const d of res.diagnostics) {
        assert.ok(!d.message.startsWith('internal error'), `${d.message}\n--- mutation of ${file}:\n${m}`);
        assert.equal(typeof d.message, 'string');
      }
      if (!res.ok) {
        withErrors++;
        assert.ok(res.diagnostics.some((d) => d.severity === 'error'));
      }
      // fmt never throws on what parses, and stays a fixed point.
      const p = parseSource(m, file);
      if (p.diagnostics.length === 0) {
        const out = formatFile(p.ast);
        assert.equal(formatFile(parseSource(out, file).ast), out, `fmt not idempotent on:\n${m}`);
      }
    }
  }
  assert.ok(total >= 4000);
  assert.ok(withErrors > total / 4, `${withErrors} of ${total} mutations had errors`);
});
