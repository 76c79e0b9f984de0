import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { MoeFile } from '../../grammar/ast.js';
import { formatFile } from '../../grammar/format.js';
import { lex } from '../../grammar/lexer.js';
import { parseSource } from '../../grammar/parse.js';
import { closest, editDistance } from '../../grammar/diagnostics.js';
import { pipelineFiles } from '../compiler/frontend/helpers.js';

/** The AST without spans (and without comments), for comparing parses of different texts. */
export function stripSpans(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripSpans);
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) {
      if (k === 'span' || k.endsWith('Span') || k === 'comments' || k === 'file') continue;
      out[k] = stripSpans(v);
    }
    return out;
  }
  return x;
}

const ast = (text: string): MoeFile => {
  const r = parseSource(text, 't.moe');
  assert.deepEqual(r.diagnostics, [], JSON.stringify(r.diagnostics));
  return r.ast;
};

test('lexes numbers, percentages, multipliers, dotted paths, strings, comments', () => {
  const r = lex('a 6e-4 5% 4x -1.5 wiki.valid "s \\" q" softmax-topk # c\n');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.tokens.map((t) => t.tokenType.name), ['Ident', 'NumberLit', 'Percent', 'Multiplier', 'NumberLit', 'Ident', 'StringLit', 'Ident', 'Newline']);
  assert.equal(r.comments.length, 1);
});

test('values become typed AST nodes with spans', () => {
  const f = ast('train {\n  lr 6e-4\n  valid 5%\n  ffn 4x\n  router cosine(dim 32)\n  betas [0.9,\n    0.95]\n}\n');
  const def = f.items[0]!;
  assert.equal(def.kind, 'definition');
  if (def.kind !== 'definition') return;
  const [lr, valid, ffn, router, betas] = def.body.statements;
  assert.deepEqual(lr!.args[0]![0], { kind: 'number', value: 6e-4, raw: '6e-4', span: lr!.args[0]![0]!.span });
  assert.equal(lr!.args[0]![0]!.span.line, 2);
  assert.equal(lr!.args[0]![0]!.span.col, 6);
  assert.equal((valid!.args[0]![0] as { value: number }).value, 0.05);
  assert.equal(ffn!.args[0]![0]!.kind, 'multiplier');
  const call = router!.args[0]![0]!;
  assert.equal(call.kind, 'call');
  if (call.kind === 'call') assert.equal(call.args[0]!.length, 2);
  const list = betas!.args[0]![0]!;
  assert.equal(list.kind, 'list');
  if (list.kind === 'list') assert.equal(list.items.length, 2);
});

test('definitions: names, extends, imports', () => {
  const f = ast('import "base.moe"\nmodel big extends mini {\n  layers 8\n}\n');
  assert.equal(f.items[0]!.kind, 'import');
  const d = f.items[1]!;
  assert.ok(d.kind === 'definition' && d.name?.text === 'big' && d.base?.text === 'mini');
});

test('recovers from syntax errors and reports several in one pass', () => {
  const r = parseSource('data a {\n  source brown ]\n}\nmodel m {\n  layers (\n}\ntrain {\n  steps 1\n', 'x.moe');
  assert.ok(r.diagnostics.length >= 2, JSON.stringify(r.diagnostics.map((d) => d.message)));
});

const sample = `# header

import "x.moe"  # trailing on import

data wiki {  # on the header
  source libreoffice-help [en,
    de]  # after a list
  valid 5%


  # own line, before a key
  context 128; tokenizer bytes
  # last in block
}
model m extends base { layers 2 }
# final
`;

test('fmt keeps comments, is idempotent, and parse -> fmt -> parse gives the same AST', () => {
  const once = formatFile(ast(sample));
  for (const c of ['# header', '# trailing on import', '# on the header', '# after a list', '# own line, before a key', '# last in block', '# final']) {
    assert.ok(once.includes(c), c);
  }
  assert.equal(formatFile(ast(once)), once);
  assert.deepEqual(stripSpans(ast(once)), stripSpans(ast(sample)));
});

for (const file of pipelineFiles()) {
  test(`round trip and idempotent fmt: ${path.basename(file)}`, () => {
    const text = readFileSync(file, 'utf8');
    const a = ast(text);
    const out = formatFile(a);
    assert.deepEqual(stripSpans(ast(out)), stripSpans(a));
    assert.equal(formatFile(ast(out)), out);
    assert.equal(out, text, 'pipelines are kept in canonical layout (run moec fmt)');
    assert.equal(ast(out).comments.length, a.comments.length);
  });
}

test('did you mean', () => {
  assert.equal(editDistance('learnd', 'learned'), 1);
  assert.equal(editDistance('ab', 'ba'), 1);
  assert.equal(closest('learnd', ['learned', 'frozen', 'random']), 'learned');
  assert.equal(closest('xyz', ['learned', 'frozen']), undefined);
});
