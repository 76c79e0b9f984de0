// Issue 21, front end: bounded nesting, a stated range for every number, no empty evaluation
// split, the one-line preset form, and the rule for paths in .moe files.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { MAX_TRIALS } from '../../../compiler/frontend/sweep.js';
import { pipelineSchema, type JsonSchema } from '../../../compiler/frontend/schema.js';
import { renderDiagnostic } from '../../../grammar/diagnostics.js';
import { MAX_NESTING, parseSource } from '../../../grammar/parse.js';
import { spanAt } from '../../../grammar/span.js';
import { pipelinesDir, repoRoot } from './helpers.js';

const quick = readFileSync(path.join(pipelinesDir, 'quickstart.moe'), 'utf8');
const FILE = path.join(pipelinesDir, 'bounds-test.moe');

/** Load `text` as if it were a file in pipelines/. */
function load(text: string, preset?: string) {
  return loadPipeline(FILE, { readFile: (f) => (path.resolve(f) === FILE ? text : undefined), ...(preset ? { preset } : {}) });
}

const errors = (r: ReturnType<typeof load>) => r.diagnostics.filter((d) => d.severity === 'error');

test('nesting past the bound is one positioned diagnostic, not a stack overflow', () => {
  const cases: [string, string][] = [
    ['[ 410 deep', `train { seed ${'['.repeat(410)} }\n`],
    ['a( 547 deep', `train { seed ${'a('.repeat(547)} }\n`],
    ['moe { 781 deep', `model m ${'moe { '.repeat(781)}\n`],
    ['label( 8000 deep', `model m { moe { router ${'label('.repeat(8000)}${')'.repeat(8000)} } }\n`],
  ];
  for (const [what, text] of cases) {
    const r = parseSource(text, 'deep.moe');
    assert.ok(!r.diagnostics.some((d) => d.message.includes('internal error')), `${what}: ${r.diagnostics[0]?.message}`);
    const d = r.diagnostics.find((x) => x.message.includes(`nesting deeper than ${MAX_NESTING} levels`));
    assert.ok(d, `${what}: ${r.diagnostics.map((x) => x.message).join('; ')}`);
    assert.equal(d.span?.line, 1);
    // The bracket that opens level 65.
    assert.ok(d.span!.col > 1 && d.span!.col < 500, `${what}: col ${d.span!.col}`);
    assert.ok(d.hint?.includes(String(MAX_NESTING)));
    // The rendered line is a window around the place, not the whole line.
    assert.ok(renderDiagnostic(d, () => text).split('\n')[1]!.length < 200);
  }
  // At the bound itself the file parses.
  const ok = parseSource(`train { seed ${'['.repeat(MAX_NESTING - 1)}${']'.repeat(MAX_NESTING - 1)} }\n`, 'ok.moe');
  assert.deepEqual(ok.diagnostics, []);
});

test('spanAt gives the same lines and columns as counting newlines', () => {
  const text = 'ab\n\ncdé\nlast';
  const naive = (off: number) => {
    let line = 1;
    let last = -1;
    for (let i = 0; i < off && i < text.length; i++) if (text[i] === '\n') { line++; last = i; }
    return { line, col: off - last };
  };
  for (let a = 0; a <= text.length; a++) {
    const s = spanAt('t', text, a, Math.min(text.length, a + 2));
    assert.deepEqual({ line: s.line, col: s.col }, naive(a), `offset ${a}`);
    assert.deepEqual({ line: s.endLine, col: s.endCol }, naive(Math.min(text.length, a + 2)));
  }
});

/** Every number the user writes, with its JSON pointer in the schema. */
function numericKeys(s: JsonSchema, ptr: string, out: [string, JsonSchema][]): [string, JsonSchema][] {
  const t = Array.isArray(s.type) ? s.type : [s.type];
  if (t.includes('integer') || t.includes('number')) out.push([ptr, s]);
  for (const [k, v] of Object.entries(s.properties ?? {})) if (!v['x-derived']) numericKeys(v, `${ptr}/${k}`, out);
  if (s.items) numericKeys(s.items, `${ptr}/[]`, out);
  if (typeof s.additionalProperties === 'object') numericKeys(s.additionalProperties, `${ptr}/*`, out);
  return out;
}

test('every number in the schema has a stated range, and LANGUAGE.md states it', () => {
  const keys = numericKeys(pipelineSchema, '', []).filter(([p]) => p !== '/version');
  assert.ok(keys.length > 30);
  for (const [p, s] of keys) {
    assert.ok(s.minimum !== undefined || s.exclusiveMinimum !== undefined, `${p} has no minimum`);
    assert.ok(s.maximum !== undefined || s.exclusiveMaximum !== undefined, `${p} has no maximum`);
  }
  const doc = readFileSync(path.join(repoRoot, 'docs/LANGUAGE.md'), 'utf8');
  assert.match(doc, /\| `accumulate` \| `INTEGER` \| `1` \| whole number, >= 1, <= 1024 \|/);
  assert.match(doc, /\| `lr` \| `NUMBER` \| `0\.0006` \| > 0, <= 10 \|/);
  assert.match(doc, /\| `context` \| `INTEGER` \| `128` \| whole number, >= 1, <= 65535 \|/);
});

test('numbers out of range or beyond a double are errors at the value', () => {
  const cases: [string, string, RegExp][] = [
    ['batch 8', 'batch 8\n  accumulate 1e7', /'accumulate' must be at most 1024, found 10000000/],
    ['batch 8', 'batch 8\n  accumulate 1e9', /'accumulate' must be at most 1024/],
    ['lr 3e-3', 'lr 1e309', /'lr' is too large: '1e309' is beyond the range of a number/],
    ['lr 3e-3', 'lr 1e3', /'lr' must be at most 10, found 1000/],
    ['context 64', 'context 65536', /'context' must be at most 65535/],
    ['seed 1', 'seed 1e300', /'seed' must be at most 4294967295/],
    ['steps 300', 'steps 2.5', /'steps' must be a whole number, found 2\.5/],
    ['valid 5%', 'valid 1e400%', /'valid' is too large/],
  ];
  for (const [from, to, want] of cases) {
    const r = load(quick.replace(from, to));
    assert.equal(r.ok, false, to);
    const e = errors(r).find((d) => want.test(d.message));
    assert.ok(e, `${to}: ${errors(r).map((d) => d.message).join('; ')}`);
    assert.ok(e.span && e.span.line > 1, `${to}: not positioned`);
  }
});

test("'valid 0' is refused where the empty split would be evaluated", () => {
  const r = load(quick.replace('valid 5%', 'valid 0'));
  assert.equal(r.ok, false);
  const es = errors(r).filter((d) => d.message.includes("has 'valid 0', so its valid split is empty"));
  assert.equal(es.length, 2, es.map((d) => d.message).join('; '));
  assert.deepEqual(es.map((d) => d.span!.line), [40, 41]);
  // Nothing evaluates the valid split: fine.
  const train = load(quick.replace('valid 5%', 'valid 0').replace('brown.valid\n', 'brown.train\n').replace('brown.valid by', 'brown.train by'));
  assert.deepEqual(errors(train), []);
  // The default evaluation (the training data's valid split) points at the data set's valid key.
  const dflt = load(quick.replace('valid 5%', 'valid 0').replace(/evaluate \{[^}]*\}/, 'evaluate { every 50 }'));
  const e = errors(dflt).find((d) => d.message.includes('the default evaluation'));
  assert.equal(e?.span?.line, 10);
});

test('the one-line preset form of LANGUAGE.md is read as two settings', () => {
  const text = `${quick}\npreset tiny { train.steps 200  model.layers 3 }\n`;
  const r = load(text, 'tiny');
  assert.deepEqual(errors(r), []);
  assert.equal(r.pipeline!.train.steps, 200);
  assert.equal(r.pipeline!.model.layers, 3);
  // A dotted value that names no field stays a value (and is reported as such).
  const bad = load(`${quick}\npreset tiny { train.steps 200 wiki.valid }\n`, 'tiny');
  assert.ok(errors(bad).some((d) => d.message.includes("'steps' takes one value, found 2")), errors(bad).map((d) => d.message).join('; '));
});

test("a call key without its value says so, not \"expects a number, found 'prefix'\"", () => {
  const r = load(quick.replace('unit token', 'unit sequence(prefix)'));
  const e = errors(r);
  assert.equal(e.length, 1, e.map((d) => d.message).join('; '));
  assert.equal(e[0]!.message, "'prefix' in unit sequence(...) needs a value");
  assert.equal(e[0]!.span!.line, 22);
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'moec-paths-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('paths: absolute imports are taken as written, leaving the folder is a positioned warning, links to non-.moe files are refused', () => {
  const shared = path.join(tmp, 'shared');
  const study = path.join(tmp, 'study');
  mkdirSync(shared, { recursive: true });
  mkdirSync(study, { recursive: true });
  const base = quick.slice(0, quick.indexOf('sweep {'));
  writeFileSync(path.join(shared, 'base.moe'), base);
  writeFileSync(path.join(shared, 'corpus.txt'), 'one paragraph\n\nanother one\n');
  // An absolute import: joined onto the importing folder before, so "no such file".
  writeFileSync(path.join(study, 'abs.moe'), `import "${path.join(shared, 'base.moe')}"\nsweep { model.moe.top in [1, 2] }\n`);
  const abs = loadPipeline(path.join(study, 'abs.moe'));
  assert.deepEqual(abs.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  assert.equal(abs.trials.length, 2);
  const w = abs.diagnostics.find((d) => d.severity === 'warning' && d.message.includes('outside the pipeline'));
  assert.ok(w, abs.diagnostics.map((d) => d.message).join('; '));
  assert.deepEqual([w.span!.line, w.span!.col], [1, 8]);
  // `..` works too, with the same warning; inside the folder there is none.
  writeFileSync(path.join(study, 'rel.moe'), `import "../shared/base.moe"\n`);
  assert.ok(loadPipeline(path.join(study, 'rel.moe')).diagnostics.some((d) => d.severity === 'warning' && d.message.includes(path.join(shared, 'base.moe'))));
  writeFileSync(path.join(shared, 'inside.moe'), `import "base.moe"\n`);
  assert.deepEqual(loadPipeline(path.join(shared, 'inside.moe')).diagnostics.filter((d) => d.message.includes('outside')), []);
  // A data source outside the folder: a warning at its path.
  writeFileSync(path.join(study, 'data.moe'), base.replace('source brown  # English, labelled by genre', `source text "../shared/corpus.txt"`).replace(/experts brown.valid by genre\n/, ''));
  const data = loadPipeline(path.join(study, 'data.moe'));
  assert.ok(data.ok, data.diagnostics.map((d) => d.message).join('; '));
  const dw = data.diagnostics.find((d) => d.message.startsWith("data set 'brown' reads"));
  assert.deepEqual([dw?.span?.line, dw?.span?.col], [7, 15]);
  // A link named .moe to another file: refused, and its text never shown.
  const secret = path.join(tmp, 'secret.txt');
  writeFileSync(secret, 'root:SECRET-FIRST-LINE\n');
  symlinkSync(secret, path.join(study, 'evil.moe'));
  writeFileSync(path.join(study, 'link.moe'), `import "evil.moe"\n${base}`);
  const link = loadPipeline(path.join(study, 'link.moe'));
  const le = link.diagnostics.find((d) => d.message.includes('it is a link to'));
  assert.ok(le, link.diagnostics.map((d) => d.message).join('; '));
  const shown = link.diagnostics.map((d) => renderDiagnostic(d, (f) => link.sources.get(f))).join('\n');
  assert.ok(!shown.includes('SECRET'), shown);
});

test('the stated maximum context compiles (at batch 1), and one past it is refused by check', async () => {
  const { compileTrial } = await import('../../../compiler/lower/compile.js');
  const r = load(quick.replace('context 64', 'context 65535').replace('batch 8', 'batch 1').replace('model.moe.top in [1, 2]', 'model.moe.top in [1]'));
  assert.deepEqual(errors(r), []);
  const c = compileTrial(r.trials[0]!.config, 'max-context');
  assert.ok(c.plan.buffers.length > 0);
  assert.equal(load(quick.replace('context 64', 'context 65536')).ok, false);
});

test('control characters: fmt keeps an import path as written, diagnostics show them escaped, never raw', async () => {
  const { formatFile } = await import('../../../grammar/format.js');
  const src = 'import "common.mo\u0001e"\n';
  const once = formatFile(parseSource(src, 'c.moe').ast);
  assert.equal(once, src);
  assert.equal(parseSource(once, 'c.moe').ast.items[0]!.kind === 'import' && (parseSource(once, 'c.moe').ast.items[0] as { path: string }).path, 'common.mo\u0001e');
  const bad = parseSource('train { seed 1 }\u001b[2J\n', 'c.moe');
  assert.equal(bad.diagnostics[0]!.message, "unexpected character '\\u001b'");
  const shown = renderDiagnostic(bad.diagnostics[0]!, () => 'train { seed 1 }\u001b[2J\n');
  assert.ok(!shown.includes('\u001b'), JSON.stringify(shown));
});

test(`a sweep past ${MAX_TRIALS} trials is refused at the dimension (or seeds) that takes it over, without resolving a trial`, () => {
  const list = (n: number, from: number) => `[${Array.from({ length: n }, (_, i) => from + i).join(', ')}]`;
  const sweepOf = (lines: string) => quick.replace('  model.moe.top in [1, 2]', lines);
  const product = sweepOf(`  train.seed in ${list(300, 1)}\n  train.steps in ${list(300, 1000)}`);
  const t0 = performance.now();
  const r = load(product, 'small');
  const ms = performance.now() - t0;
  const [e] = errors(r);
  assert.ok(e, 'refused');
  assert.match(e.message, new RegExp(`^the sweep expands to more than ${MAX_TRIALS} trials \\(at least \\d+ by this dimension\\)$`));
  assert.equal(product.split('\n')[e.span!.line - 1]!.trim().split(' ')[0], 'train.steps', 'at the second dimension');
  assert.ok(ms < 3000, `refused before resolving trials (${ms.toFixed(0)} ms)`);
  const seeded = load(sweepOf(`  train.steps in ${list(MAX_TRIALS / 2 + 1, 1000)}\n  seeds [1, 2]`), 'small');
  assert.match(errors(seeded)[0]!.message, /more than \d+ trials \(at least \d+ × 2 seeds by this dimension\)/);
  assert.equal(load(sweepOf(`  train.steps in ${list(MAX_TRIALS / 4, 1000)}\n  seeds [1, 2]`), 'small').trials.length, MAX_TRIALS / 2, 'under the bound: every trial');
});
