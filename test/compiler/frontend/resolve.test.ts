import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPipeline, pipelineSchema } from '../../../compiler/frontend/index.js';
import { shortForm } from '../../../grammar/diagnostics.js';

const load = (text: string, files: Record<string, string> = {}, preset?: string) =>
  loadPipeline('main.moe', { readFile: (f) => (f === 'main.moe' ? text : files[f]), ...(preset ? { preset } : {}) });

const base = `data wiki {
  source libreoffice-help [en, de]
  valid 5%
}
model mini {
  layers 2
  width 64
  heads 2
  ffn 3x
  moe {
    experts 4
    top 2
    router cosine(dim 16)
    unit sequence(prefix 32)
    capacity dropless
  }
}
train {
  steps 1000
  warmup 5%
  lr 6e-4
  min-lr 10%
}
`;

test('defaults filled, units normalised, derived fields computed', () => {
  const r = load(base);
  assert.ok(r.ok, r.diagnostics.map(shortForm).join('\n'));
  const p = r.pipeline!;
  assert.equal(p.data['wiki']!.valid, 0.05);
  assert.equal(p.data['wiki']!.tokenizer, 'gpt2');
  assert.deepEqual(p.data['wiki']!.labels, ['language']);
  assert.equal(p.model.ffn, 192);
  assert.equal(p.model.vocab, 50257);
  assert.equal(p.model.context, 128);
  assert.equal(p.model.moe!.router, 'cosine');
  assert.equal(p.model.moe!.dim, 16);
  assert.equal(p.model.moe!.unit, 'sequence');
  assert.equal(p.model.moe!.prefix, 32);
  assert.equal(p.model.moe!.dropless, true);
  assert.deepEqual(p.model.moe!.layers, [0, 1]);
  assert.equal(p.train.warmup, 50);
  assert.equal(p.train.lr, 6e-4);
  assert.equal(p.train.minLr, 0.1);
  assert.equal(p.train.data, 'wiki');
  assert.equal(p.train.model, 'mini');
  assert.deepEqual(p.evaluate.perplexity, [{ data: 'wiki', split: 'valid' }]);
  assert.equal(r.trials.length, 1);
  assert.equal(r.trials[0]!.name, 'base');
});

test('every field of the schema has a description, and every written field a default or a rule', () => {
  const walk = (s: Record<string, unknown>, where: string): void => {
    const props = (s['properties'] ?? {}) as Record<string, Record<string, unknown>>;
    for (const [k, p] of Object.entries(props)) {
      assert.ok(typeof p['description'] === 'string' && (p['description'] as string).length > 5, `${where}.${k} has no description`);
      walk(p, `${where}.${k}`);
    }
    if (s['additionalProperties'] && typeof s['additionalProperties'] === 'object') walk(s['additionalProperties'] as Record<string, unknown>, `${where}.*`);
  };
  walk(pipelineSchema as Record<string, unknown>, 'pipeline');
});

test('imports: definitions reused and overridden key by key; extends', () => {
  const files = { 'lib/common.moe': base };
  const r = load('import "lib/common.moe"\nmodel mini {\n  layers 4\n  moe {\n    top 1\n  }\n}\nmodel big extends mini {\n  width 128\n}\ntrain {\n  model big\n}\n', files);
  assert.ok(r.ok, r.diagnostics.map(shortForm).join('\n'));
  const m = r.pipeline!.model;
  assert.equal(m.name, 'big');
  assert.equal(m.layers, 4);
  assert.equal(m.width, 128);
  assert.equal(m.moe!.top, 1);
  assert.equal(m.moe!.experts, 4, 'kept from the imported moe block');
  assert.equal(r.pipeline!.train.steps, 1000, 'train imported');
});

test('presets override selected fields, flat or nested', () => {
  const text = base + 'preset small {\n  train.steps 10\n  model {\n    moe {\n      experts 2\n    }\n  }\n  data.context 64\n}\n';
  const r = load(text, {}, 'small');
  assert.ok(r.ok, r.diagnostics.map(shortForm).join('\n'));
  assert.equal(r.pipeline!.train.steps, 10);
  assert.equal(r.pipeline!.train.warmup, 1);
  assert.equal(r.pipeline!.model.moe!.experts, 2);
  assert.equal(r.pipeline!.data['wiki']!.context, 64);
  assert.equal(r.pipeline!.preset, 'small');
  const bad = load(text, {}, 'smal');
  assert.equal(bad.diagnostics[0]!.message, "unknown preset 'smal' (did you mean 'small'?)");
});

test('several errors in one pass, sorted by position', () => {
  const r = load(base.replace('heads 2', 'heads 5').replace('top 2', 'top 7').replace('lr 6e-4', 'lr -1'));
  assert.deepEqual(r.diagnostics.map(shortForm), [
    '8:9 heads (5) must divide width (64)',
    '12:9 top-k (7) exceeds the number of experts (4)',
    "21:6 'lr' must be greater than 0, found -1",
  ]);
});

test('never throws: empty, binary and huge inputs', () => {
  for (const text of ['', '\u0000\u0001', '{'.repeat(2000), 'data x {\n'.repeat(500), 'model m { moe { every 1e308 } }', '"'.repeat(10)]) {
    const r = load(text);
    assert.equal(r.ok, false);
    assert.ok(r.diagnostics.length > 0);
  }
});

test('sample balanced(LABEL): resolved, and a label the data lacks or a missing label is refused at its line', () => {
  const ok = load(base.replace('  min-lr 10%\n', '  min-lr 10%\n  sample balanced(language)\n'));
  assert.ok(ok.ok, ok.diagnostics.map(shortForm).join('\n'));
  assert.equal(ok.pipeline!.train.sample, 'balanced');
  assert.equal(ok.pipeline!.train.balanceBy, 'language');
  assert.equal(load(base).pipeline!.train.sample, 'uniform');
  const wrong = load(base.replace('  min-lr 10%\n', '  min-lr 10%\n  sample balanced(langauge)\n'));
  assert.ok(!wrong.ok);
  assert.match(wrong.diagnostics.map(shortForm).join('\n'), /^23:\d+ sample balanced\(langauge\) needs a label the training data 'wiki' has.*did you mean 'language'/);
  const bare = load(base.replace('  min-lr 10%\n', '  min-lr 10%\n  sample balanced\n'));
  assert.match(bare.diagnostics.map(shortForm).join('\n'), /balanced sampling needs the label to balance/);
});

test('optimizer ngd is refused for a language model, also when a sweep sets it, at the line that sets it', () => {
  const swept = load(`${base}sweep { train.optimizer in [sgd, ngd] }\n`);
  assert.ok(!swept.ok);
  const d = swept.diagnostics.map(shortForm);
  assert.equal(d.length, 1, d.join('\n'));
  assert.match(d[0]!, /^24:34 optimizer ngd \(normalised gradient descent per expert, Chen et al\. 2022\) is implemented for the patch model of the cluster task only/);
  assert.match(swept.diagnostics[0]!.hint ?? '', /^use optimizer adamw, adam or sgd for language models; in trial optimizer=ngd/);
});
