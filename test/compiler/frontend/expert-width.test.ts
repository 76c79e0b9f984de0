import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countParams, loadPipeline } from '../../../compiler/frontend/index.js';
import type { MoeConfig } from '../../../compiler/frontend/types.js';

// Fine-grained experts (DeepSeekMoE): `expert-width`, `shared-width` and `granularity` resolve to
// absolute widths and scaled experts/top; parameter counts follow them; dense baselines still match.

const load = (text: string) => loadPipeline('main.moe', { readFile: (f) => (f === 'main.moe' ? text : undefined) });

const file = (moe: string, model = '') => `data d {
  source brown
  tokenizer bytes
  context 16
}
model mini {
  layers 2
  width 64
  heads 2${model}
  moe {
    experts 8
    top 2
${moe}
  }
}
`;

const moeOf = (moe: string, model = ''): MoeConfig => {
  const r = load(file(moe, model));
  assert.ok(r.ok, r.diagnostics.map((d) => d.message).join('\n'));
  return r.pipeline!.model.moe!;
};

/** The error diagnostics of a file, as `line:col message`. */
const errors = (text: string) => load(text).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.span?.line}:${d.span?.col} ${d.message}`);

test('expert-width: a fraction of ffn (0.25, 25%), an absolute width, or ffn itself (null)', () => {
  assert.equal(moeOf('    expert-width 0.25').expertWidth, 64);
  assert.equal(moeOf('    expert-width 25%').expertWidth, 64);
  assert.equal(moeOf('    expert-width 0.3333').expertWidth, 85); // 0.3333 × 256 = 85.3, rounded
  assert.equal(moeOf('    expert-width 40').expertWidth, 40);
  assert.equal(moeOf('    expert-width 100%').expertWidth, null, 'the full FFN width is the default, written as null');
  assert.equal(moeOf('    expert-width 256').expertWidth, null);
  assert.equal(moeOf('').expertWidth, null);
  // A fraction is of the model's own ffn, whatever it is written as.
  assert.equal(moeOf('    expert-width 50%', '\n  ffn 3x').expertWidth, 96);
  const shared = moeOf('    shared 2\n    shared-width 0.125');
  assert.equal(shared.sharedWidth, 32);
  assert.equal(shared.expertWidth, null, 'the shared width leaves the routed width alone');
});

test('granularity m: m× experts and top, 1/m the expert width (of ffn or of expert-width)', () => {
  const g = moeOf('    granularity 4');
  assert.deepEqual([g.experts, g.top, g.expertWidth, g.granularity], [32, 8, 64, 4]);
  const h = moeOf('    granularity 2\n    expert-width 50%\n    shared 1\n    shared-width 64');
  assert.deepEqual([h.experts, h.top, h.expertWidth, h.sharedWidth], [16, 4, 64, 64], 'the shared width is not split');
  const one = moeOf('    granularity 1');
  assert.deepEqual([one.experts, one.top, one.expertWidth], [8, 2, null]);
});

test('bad widths and splits are errors at their line, with what to write', () => {
  assert.deepEqual(errors(file('    expert-width 1.5')), [`13:18 'expert-width' 1.5 is neither a fraction of ffn (below 1) nor a whole width`]);
  assert.deepEqual(errors(file('    expert-width 0.001')), [`13:18 'expert-width' 0.001 of ffn 256 is 0.256, under one unit`]);
  assert.deepEqual(errors(file('    granularity 3')), ['13:17 granularity 3 splits each expert\'s width 256 into 3 parts, but 3 does not divide 256']);
  assert.deepEqual(errors(file('    shared-width 32')), [`13:18 'shared-width' sets the width of shared experts, but the model has none (shared 0)`]);
  assert.deepEqual(errors(file('    expert linear\n    expert-width 32')), [`14:18 'expert-width' sets the hidden width of MLP experts; linear experts (expert linear) have none`]);
  assert.deepEqual(errors(file('    expert linear\n    granularity 2')), [`14:17 'granularity' sets the hidden width of MLP experts; linear experts (expert linear) have none`]);
  assert.ok(load(file('    granularity 3')).diagnostics[0]!.hint!.includes('1, 2, 4, 8, 16'));
  // top × m above experts × m cannot happen; experts × m beyond the schema's bound is the schema's error.
  assert.equal(errors(file('    granularity 64\n    expert-width 1024').replace('experts 8', 'experts 32')).length, 1);
});

test('parameter counts: routed experts at expert-width, shared at shared-width, dense layers at ffn', () => {
  const d = 64;
  const ffn = (h: number) => 2 * d * h + h + d;
  const attn = 2 * d + 3 * d * d + 3 * d + d * d + d + 2 * d;
  const emb = 256 * d + 16 * d + 2 * d;
  // every 2: layer 0 dense (ffn 256), layer 1 MoE: 16 experts of width 48, top 4, 2 shared of width 40.
  const m = load(file('    every 2\n    expert-width 96\n    granularity 2\n    shared 2\n    shared-width 40')).pipeline!.model;
  assert.deepEqual([m.moe!.experts, m.moe!.top, m.moe!.expertWidth], [16, 4, 48]);
  const router = d * 16;
  assert.deepEqual(countParams(m), {
    total: emb + 2 * attn + ffn(256) + router + 16 * ffn(48) + 2 * ffn(40),
    active: emb + 2 * attn + ffn(256) + router + 4 * ffn(48) + 2 * ffn(40),
  });
});

test('dense baselines match a fine-grained model\'s total and active counts to the nearest FFN unit; the defaults keep trial ids', () => {
  const r = load(file('    shared 1\n    shared-width 16\n    expert-width 32') + 'sweep {\n  model.moe.granularity in [1, 2, 4]\n  baseline dense same total, same active\n}\n');
  assert.ok(r.ok, r.diagnostics.map((x) => x.message).join('\n'));
  const moe = r.trials.filter((t) => t.baseline === null);
  assert.deepEqual(moe.map((t) => [t.config.model.moe!.experts, t.config.model.moe!.top, t.config.model.moe!.expertWidth]), [[8, 2, 32], [16, 4, 16], [32, 8, 8]]);
  const baselines = r.trials.filter((t) => t.baseline !== null);
  assert.equal(baselines.length, 6, 'every split changes both counts (router, output biases)');
  const perUnit = 2 * (2 * 64 + 1); // two dense layers, each FFN unit adds 2·width + 1 parameters
  for (const b of baselines) {
    const m = moe.find((t) => t.name === b.matches)!;
    const target = b.baseline === 'total' ? m.params_count.total : m.params_count.active;
    assert.equal(b.config.model.moe, null);
    assert.deepEqual(b.params_count, countParams(b.config.model));
    const off = Math.abs(b.params_count.total - target);
    assert.ok(off <= perUnit / 2, `${b.name}: ${b.params_count.total} vs ${target}`);
    // No other dense width is closer.
    for (const f of [b.config.model.ffn - 1, b.config.model.ffn + 1]) assert.ok(Math.abs(countParams({ ...b.config.model, ffn: f }).total - target) >= off);
  }
  // Writing the defaults out changes nothing: the same trial (same id) as not writing them.
  const plain = load(file('')).trials[0]!;
  assert.equal(load(file('    expert-width 100%\n    granularity 1')).trials[0]!.id, plain.id);
  assert.equal(load(file('    expert-width 256')).trials[0]!.id, plain.id);
});
