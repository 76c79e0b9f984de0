import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { renderDiagnostic, shortForm } from '../../../grammar/diagnostics.js';
import { invalidDir, pipelineFiles } from './helpers.js';

const show = (r: ReturnType<typeof loadPipeline>) => r.diagnostics.map((d) => renderDiagnostic(d, (f) => r.sources.get(f))).join('\n');

test('pipelines/ holds the quickstart and the study pipelines', () => {
  const names = pipelineFiles().map((f) => path.basename(f));
  for (const n of ['quickstart.moe', 'token-vs-sequence.moe', 'router-kinds.moe', 'scope.moe', 'balance-loss.moe', 'dense-baselines.moe', 'specialisation.moe', 'clusters.moe']) {
    assert.ok(names.includes(n), n);
  }
});

// Warnings a study accepts on purpose, by file: modern-routing.moe's expert-choice arm is not causal.
const expectedWarnings: Record<string, RegExp[]> = { 'modern-routing.moe': [/^expert choice is not causal/] };
const unexpected = (file: string, r: ReturnType<typeof loadPipeline>) => ({
  ...r, diagnostics: r.diagnostics.filter((d) => d.severity !== 'warning' || !(expectedWarnings[path.basename(file)] ?? []).some((w) => w.test(d.message))),
});

for (const file of pipelineFiles()) {
  test(`${path.basename(file)} checks clean, with every preset`, () => {
    const r = unexpected(file, loadPipeline(file));
    assert.equal(r.diagnostics.length, 0, show(r));
    assert.ok(r.pipeline);
    assert.ok(r.trials.length >= 1);
    if (path.basename(file) !== 'common.moe') {
      assert.ok(r.presets.includes('small') && r.presets.includes('full'), `${file} needs presets small and full`);
    }
    for (const p of r.presets) {
      const rp = unexpected(file, loadPipeline(file, { preset: p }));
      assert.equal(rp.diagnostics.length, 0, `--preset ${p}\n${show(rp)}`);
      assert.equal(rp.pipeline?.preset, p);
    }
  });
}

test('the quickstart is tiny', () => {
  const r = loadPipeline(pipelineFiles().find((f) => f.endsWith('quickstart.moe'))!);
  const m = r.pipeline!.model;
  assert.ok(m.layers <= 2 && m.width <= 128 && m.moe && m.moe.experts === 4 && m.moe.top === 2);
  assert.ok(r.pipeline!.train.steps <= 500);
});

test('same file, same trial ids', () => {
  for (const file of pipelineFiles()) {
    const a = loadPipeline(file).trials.map((t) => `${t.id} ${t.name}`);
    const b = loadPipeline(file).trials.map((t) => `${t.id} ${t.name}`);
    assert.deepEqual(a, b);
    assert.equal(new Set(a).size, a.length);
  }
});

const fixtures = readdirSync(invalidDir).filter((f) => f.endsWith('.moe')).sort();

test('the invalid corpus has at least 40 files', () => {
  assert.ok(fixtures.length >= 40, String(fixtures.length));
});

for (const f of fixtures) {
  test(`invalid/${f}: exact diagnostics`, () => {
    const file = path.join(invalidDir, f);
    const text = readFileSync(file, 'utf8');
    const expected = text.split('\n').filter((l) => l.startsWith('# expect: ')).map((l) => l.slice('# expect: '.length));
    assert.ok(expected.length > 0, 'the fixture needs # expect: lines');
    const r = loadPipeline(file);
    assert.equal(r.ok, false);
    const got = r.diagnostics.filter((d) => d.severity === 'error').map((d) =>
      (d.span && path.resolve(d.span.file) !== path.resolve(file) ? `${path.relative(invalidDir, d.span.file)}:` : '') + shortForm(d));
    assert.deepEqual(got, expected);
    // Every diagnostic renders with its source line and an underline.
    for (const d of r.diagnostics) {
      const out = renderDiagnostic(d, (x) => r.sources.get(x));
      if (d.span) assert.match(out, /\n .*\|.*\n .*\| *\^+/);
    }
  });
}
