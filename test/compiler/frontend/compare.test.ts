import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPipeline } from '../../../compiler/frontend/index.js';

const load = (sweep: string) => loadPipeline('main.moe', {
  readFile: (f) => (f === 'main.moe' ? `data wiki {
  source libreoffice-help [en, de]
}
model mini {
  layers 2
  width 64
  heads 2
  moe {
    experts 8
    top 2
  }
}
sweep {
  model.moe.unit in [token, sequence]
  model.moe.top in [1, 2]
  baseline dense same total
${sweep}
}
` : undefined),
});

test('compare lines reach the sweep spec and change no trial id', () => {
  const plain = load('');
  const r = load('  compare model.moe.unit against sequence by model.moe.top\n  compare baseline\n  compare model.moe.top');
  assert.ok(r.ok, r.diagnostics.map((d) => d.message).join('\n'));
  assert.deepEqual(r.pipeline!.sweep!.comparisons, [
    { path: 'model.moe.unit', reference: 'sequence', by: ['model.moe.top'] },
    { path: 'baseline', reference: null, by: [] },
    { path: 'model.moe.top', reference: null, by: [] },
  ]);
  assert.deepEqual(r.trials.map((t) => t.id), plain.trials.map((t) => t.id));
  assert.deepEqual(plain.pipeline!.sweep!.comparisons, []);
});

for (const [line, message, col] of [
  ['  compare model.moe.experts', "compare: 'model.moe.experts' is not swept", 11],
  ['  compare model.moe.unit against tokn', "'tokn' is not a value of 'model.moe.unit' (did you mean 'token'?)", 34],
  ['  compare model.moe.unit by model.moe.experts', "'by': 'model.moe.experts' is not swept", 29],
  ['  compare model.moe.unit by model.moe.unit', "'model.moe.unit' is the compared path; 'by' names the others to hold fixed", 29],
  ['  compare model.moe.unit at model.moe.top', "unexpected 'at' in 'compare': expected 'against' or 'by'", 26],
  ['  compare', "'compare' needs a swept path", 3],
  ['  compare model.moe.unit by', "'by' needs the swept paths to hold fixed", 26],
] as const) {
  test(`compare: ${message}`, () => {
    const r = load(line);
    assert.equal(r.ok, false);
    const d = r.diagnostics.find((x) => x.severity === 'error')!;
    assert.equal(d.message, message);
    assert.equal(d.span!.line, 17);
    assert.equal(d.span!.col, col);
    assert.ok(d.hint, 'a hint says what to write');
  });
}
