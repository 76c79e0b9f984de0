import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countParams, loadPipeline, trialId } from '../../../compiler/frontend/index.js';
import { expandThousand } from '../../../runtime/bench/expand.js';

const load = (text: string, files: Record<string, string> = {}, preset?: string) =>
  loadPipeline('main.moe', { readFile: (f) => (f === 'main.moe' ? text : files[f]), ...(preset ? { preset } : {}) });

const base = `data wiki {
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
`;

test('1,000 trials expand with unique, stable ids', () => {
  const a = expandThousand();
  assert.ok(a.ok, a.diagnostics.map((d) => d.message).join('\n'));
  assert.equal(a.trials.length, 1000);
  assert.equal(new Set(a.trials.map((t) => t.id)).size, 1000);
  assert.equal(new Set(a.trials.map((t) => t.name)).size, 1000);
  const b = expandThousand();
  assert.deepEqual(b.trials.map((t) => t.id), a.trials.map((t) => t.id));
});

test('ids ignore settings at their default, so a key added later with a default keeps old ids', () => {
  const r = load(base);
  assert.ok(r.ok);
  const c = r.trials[0]!.config;
  assert.equal(r.trials[0]!.id, trialId(c));
  // As a config from before noise-dist, sample and balance-by existed (every key at its default).
  const older = structuredClone(c) as unknown as { model: { moe: Record<string, unknown> }; train: Record<string, unknown> };
  delete older.model.moe.noiseDist;
  delete older.train.sample;
  delete older.train.balanceBy;
  assert.equal(trialId(older as unknown as typeof c), trialId(c));
  // The same setting written explicitly at its default is the same trial.
  const explicit = load(base.replace('top 2', 'top 2\n    noise-dist gaussian'));
  assert.equal(explicit.trials[0]!.id, r.trials[0]!.id);
  // Any setting away from its default is another trial.
  const other = load(base.replace('top 2', 'top 2\n    noise-dist uniform'));
  assert.notEqual(other.trials[0]!.id, r.trials[0]!.id);
  const lr = load(base + 'train { lr 1e-3 }\n');
  assert.notEqual(lr.trials[0]!.id, r.trials[0]!.id);
});

test('product, readable names, seeds', () => {
  const r = load(base + 'sweep {\n  model.moe.unit in [token, sequence]\n  model.moe.top in [1, 2]\n  seeds 2\n}\n');
  assert.ok(r.ok);
  assert.deepEqual(r.trials.map((t) => t.name), [
    'unit=token,top=1,seed=1', 'unit=token,top=1,seed=2', 'unit=token,top=2,seed=1', 'unit=token,top=2,seed=2',
    'unit=sequence,top=1,seed=1', 'unit=sequence,top=1,seed=2', 'unit=sequence,top=2,seed=1', 'unit=sequence,top=2,seed=2',
  ]);
  const t = r.trials[5]!;
  assert.equal(t.config.model.moe!.unit, 'sequence');
  assert.equal(t.config.model.moe!.top, 1);
  assert.equal(t.config.train.seed, 2);
  assert.equal(t.seed, 2);
  assert.deepEqual(t.params, { 'model.moe.unit': 'sequence', 'model.moe.top': '1', 'train.seed': '2' });
  assert.equal(t.config.sweep, null);
});

test('zip pairs values; when makes a dimension conditional', () => {
  const r = load(base + `sweep {
  zip {
    model.width in [64, 128]
    model.heads in [2, 4]
  }
  model.moe.capacity in [dropless, 1.0]
  model.moe.zloss in [0, 0.001] when model.moe.capacity != dropless
}
`);
  assert.ok(r.ok, r.diagnostics.map((d) => d.message).join('\n'));
  assert.deepEqual(r.trials.map((t) => t.name), [
    'width=64,heads=2,capacity=dropless', 'width=64,heads=2,capacity=1.0,zloss=0', 'width=64,heads=2,capacity=1.0,zloss=0.001',
    'width=128,heads=4,capacity=dropless', 'width=128,heads=4,capacity=1.0,zloss=0', 'width=128,heads=4,capacity=1.0,zloss=0.001',
  ]);
  assert.equal(r.trials[0]!.config.model.moe!.dropless, true);
  assert.equal(r.trials[1]!.config.model.moe!.dropless, false);
  assert.equal(r.trials[1]!.config.model.moe!.capacity, 1);
  assert.equal(r.trials[5]!.config.model.heads, 4);
});

test('baseline dense same total / same active solves the dense FFN width', () => {
  const r = load(base + 'sweep {\n  model.moe.top in [1, 2]\n  baseline dense same total, same active\n}\n');
  assert.ok(r.ok);
  const moe = r.trials.filter((t) => t.baseline === null);
  const total = r.trials.filter((t) => t.baseline === 'total');
  const active = r.trials.filter((t) => t.baseline === 'active');
  assert.equal(moe.length, 2);
  assert.equal(total.length, 1, 'top does not change the total count, so one same-total baseline');
  assert.equal(active.length, 2);
  for (const b of [...total, ...active]) {
    const m = moe.find((t) => t.name === b.matches)!;
    assert.equal(b.config.model.moe, null);
    const target = b.baseline === 'total' ? m.params_count.total : m.params_count.active;
    const perUnit = 2 * 2 * 64 + 2; // two layers, each FFN unit adds 2*width + 1 parameters
    assert.ok(Math.abs(b.params_count.total - target) <= perUnit / 2, `${b.name}: ${b.params_count.total} vs ${target}`);
    assert.equal(b.config.model.width, m.config.model.width);
  }
});

test('parameter counts of a GPT-2-style model', () => {
  const r = load(base.replace('source libreoffice-help [en, de]', 'source brown\n  tokenizer bytes\n  context 16'));
  const m = r.pipeline!.model;
  const d = 64;
  const h = 256;
  const attn = 2 * d + 3 * d * d + 3 * d + d * d + d + 2 * d;
  const emb = 256 * d + 16 * d + 2 * d;
  const ffn = 2 * d * h + h + d;
  const router = d * 8;
  assert.deepEqual(countParams(m), { total: emb + 2 * (attn + router + 8 * ffn), active: emb + 2 * (attn + router + 2 * ffn) });
  assert.deepEqual(countParams({ ...m, moe: null }), { total: emb + 2 * (attn + ffn), active: emb + 2 * (attn + ffn) });
});

test('a swept value that breaks a check points at the sweep, naming the trial', () => {
  const text = base + 'sweep {\n  model.moe.top in [1, 9]\n}\n';
  const r = load(text);
  assert.equal(r.ok, false);
  const d = r.diagnostics.find((x) => x.severity === 'error')!;
  assert.equal(d.message, 'top-k (9) exceeds the number of experts (8)');
  assert.equal(d.span!.line, 14);
  assert.equal(d.span!.col, 24);
  assert.match(d.hint ?? '', /in trial top=9/);
});
