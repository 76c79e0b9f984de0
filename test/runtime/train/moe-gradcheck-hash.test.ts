import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { countParams, loadPipeline } from '../../../compiler/frontend/index.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { compileGpt2, compileTrial } from '../../../compiler/lower/compile.js';
import { compileOrExplain } from '../../../runtime/cli/commands/compile.js';
import { defaultLimits } from '../../../compiler/lower/summary.js';
import { UserError } from '../../../grammar/user-error.js';
import { repoRoot, withTempFile } from '../../compiler/frontend/helpers.js';
import { gradCheck, moeConfig, spec } from './moe-helpers.js';

// Hash routing (Roller et al. 2021): gradients through a hash-routed MoE layer (the experts, the
// gates fixed at 1/K, x through the gathered rows), its parameter count, a sweep over it, and the
// positioned refusals of settings a hash router cannot take.

for (const [what, o] of [
  ['top 2 of 3, token, dropless', { top: 2 }],
  ['top 1 (the paper\'s hash layer), capacity 0.7 (drops), global scope, linear experts', { top: 1, dropless: false, capacity: 0.7, scope: 'global', expert: 'linear' }],
] as const) {
  test(`MoE gradients match finite differences: hash router, ${what}`, async () => {
    const { failures, checked, skipped } = await gradCheck(moeConfig({ router: 'hash', balance: 0, zloss: 0, ...o }));
    assert.deepEqual(failures, []);
    assert.equal(skipped, 0, 'a hash routing never changes with the weights');
    assert.ok(checked >= 12, `checked ${checked}`);
  });
}

test('a hash router has no parameters: the plan counts what the front end counts, a learned router less C×E per layer', () => {
  const model = (router: 'hash' | 'learned') => ({ name: 'm', layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, dropout: 0, vocab: spec.vocab, context: spec.context, moe: moeConfig({ router, zloss: 0 }) });
  const c = compileGpt2(spec, moeBlock(spec, model('hash').moe));
  assert.equal(c.layout.count, countParams(model('hash')).total);
  assert.ok(![...c.layout.offsets.keys()].some((n) => n.includes('.router')), 'no router tensors');
  assert.equal(countParams(model('learned')).total - countParams(model('hash')).total, 2 * spec.width * 3);
});

const quickstart = readFileSync(path.join(repoRoot, 'pipelines/quickstart.moe'), 'utf8');

/** Loads .moe text from a temporary file named hash.moe (the sources stay in the result). */
const load = (text: string) => withTempFile('hash.moe', text, (file) => loadPipeline(file));

/** The quickstart with `router hash`, its moe lines edited by `edit`, and `sweep` in place of its sweep line. */
const hashText = (edit: (moe: string) => string = (m) => m, sweep = '  model.moe.top in [2]') =>
  quickstart.replace(/  moe \{[^}]*\}/, (m) => edit(m.replace('router learned', 'router hash'))).replace('  model.moe.top in [1, 2]', sweep);

test('router hash is selectable and sweepable from .moe; each trial compiles with no router parameters', () => {
  const r = load(hashText((m) => m.replace('router hash', 'router learned'), '  model.moe.router in [learned, hash]'));
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  assert.deepEqual(r.trials.map((t) => t.config.model.moe!.router), ['learned', 'hash']);
  assert.notEqual(r.trials[0]!.id, r.trials[1]!.id);
  const c = compileTrial(r.trials[1]!.config);
  assert.equal(c.layout.count, r.trials[1]!.params_count.total);
  assert.ok(![...c.layout.offsets.keys()].some((n) => n.includes('.router')), 'no router tensors');
  assert.ok(c.plan.kernels.some((k) => k.wgsl.includes('var<storage, read> tokens: array<u32>;') && k.wgsl.includes('sel[a] = pick;')), 'the hash selection kernel reads the token ids');
});

test('settings a hash router cannot take are refused at their line and column, with what to write', () => {
  const cases = [
    ['noise 0.1', 'noise 0'], ['zloss 0.001', 'zloss 0'], ['second sampled', 'second top'], ['unit sequence', 'unit token'],
  ] as const;
  for (const [line, hint] of cases) {
    const key = line.split(' ')[0]!;
    const text = hashText((m) => (key === 'unit' ? m.replace('unit token', line) : m.replace('    router hash\n', `    router hash\n    ${line}\n`)));
    const r = load(text);
    assert.ok(r.ok, `${line}: the front end accepts it (${JSON.stringify(r.diagnostics.map((d) => d.message))})`);
    let err: unknown;
    try { compileOrExplain(r, r.trials[0]!, defaultLimits); } catch (e) { err = e; }
    assert.ok(err instanceof UserError, `${line}: refused`);
    const lines = text.split('\n');
    const row = lines.findIndex((l) => l.trim() === line) + 1;
    // The span is the value written after the key.
    const col = lines[row - 1]!.indexOf(line.slice(key.length + 1), lines[row - 1]!.indexOf(key) + key.length) + 1;
    assert.match(err.message, new RegExp(`hash\\.moe:${row}:${col}`), `${line}: at ${row}:${col}: ${err.message}`);
    assert.ok(err.message.includes(hint), `${line}: the hint says ${hint}: ${err.message}`);
  }
});
