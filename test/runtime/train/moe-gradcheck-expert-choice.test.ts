import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { countParams, loadPipeline } from '../../../compiler/frontend/index.js';
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import { activeParams, moeBlock } from '../../../compiler/graph/moe.js';
import { compileGpt2, compileTrial } from '../../../compiler/lower/compile.js';
import { expertChoiceCapacity } from '../../../compiler/routing/expert-choice.js';
import { repoRoot, withTempFile } from '../../compiler/frontend/helpers.js';
import { gradCheck, moeConfig, spec } from './moe-helpers.js';

// Expert-choice routing (Zhou et al. 2022): gradients of a whole tiny model through it (the experts,
// the gathered gates into the router, x through the router and the experts' rows), its parameter
// count (the router is token choice's linear map), and selection and sweeping from .moe.

const ec = { choice: 'expert', balance: 0, dropless: false, capacity: 1 } as const;

const cases: [string, Partial<MoeConfig>][] = [
  ['over the micro-batch, top 2 of 3 (c = 7 of 10), z-loss', { top: 2 }],
  ['within each sequence, top 1 of 3, capacity 1.5 (c = 3 of 5), global scope', { top: 1, capacity: 1.5, choiceGroup: 'sequence', scope: 'global', zloss: 0 }],
  ['cosine router, sigmoid scores, linear experts, MoE in layer 1 only', { router: 'cosine', dim: 4, gate: 'sigmoid', expert: 'linear', layers: [1], zloss: 0 }],
];
for (const [what, o] of cases) {
  test(`MoE gradients match finite differences: expert choice, ${what}`, async () => {
    const { failures, checked, skipped } = await gradCheck(moeConfig({ ...ec, ...o }));
    assert.deepEqual(failures, []);
    assert.ok(checked >= 12, `checked ${checked} (skipped ${skipped} where a choice changed)`);
  });
}

test('expert choice capacity: c = ceil(capacity · G · k / E), at least 1, at most the group', () => {
  assert.equal(expertChoiceCapacity(moeConfig({ ...ec, experts: 5, top: 2 }), 37), 15);
  assert.equal(expertChoiceCapacity(moeConfig({ ...ec, experts: 8, top: 1, capacity: 0.01 }), 5), 1);
  assert.equal(expertChoiceCapacity(moeConfig({ ...ec, experts: 2, top: 2, capacity: 2 }), 5), 5);
});

test('expert choice keeps token choice\'s parameter count: the plan counts what the front end counts, and the same for both', () => {
  const model = (o: object) => ({ name: 'm', layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, dropout: 0, vocab: spec.vocab, context: spec.context, moe: moeConfig(o) });
  const expert = model(ec);
  const token = model({});
  const c = compileGpt2(spec, moeBlock(spec, expert.moe));
  assert.equal(c.layout.count, countParams(expert).total);
  assert.deepEqual(countParams(expert), countParams(token));
  assert.equal(c.layout.count, compileGpt2(spec, moeBlock(spec, token.moe)).layout.count);
  assert.ok(c.layout.offsets.has('h.0.mlp.router.weight'), 'the router is the learned linear map');
});

test('active parameters under expert choice count the experts a token gets on average, E·c/G, in the front end and the plan alike', () => {
  const model = (o: object) => ({ name: 'm', layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, dropout: 0, vocab: spec.vocab, context: spec.context, moe: moeConfig({ ...ec, ...o }) });
  const { width: C, ffn: F } = spec;
  const expert = 2 * C * F + F + C;
  // Two MoE layers; per token each uses E·c/G experts in place of token choice's top.
  const cases: [string, object, number][] = [
    ['capacity 2 over the batch of 10 tokens: c = 7 of 10, 3·7/10 = 2.1 experts', { experts: 3, top: 1, capacity: 2 }, 2.1],
    ['capacity 1 within sequences of 5: c = ceil(5·2/3) = 4, 3·4/5 = 2.4 experts', { experts: 3, top: 2, choiceGroup: 'sequence' }, 2.4],
    ['capacity 1 with E dividing G·k: exactly top', { experts: 5, top: 2 }, 2],
  ];
  for (const [what, o, k] of cases) {
    const m = model(o);
    const token = countParams({ ...m, moe: { ...m.moe, choice: 'token', dropless: true } }, undefined, spec.batch);
    const want = token.active + Math.round(2 * (k - m.moe.top) * expert);
    const got = countParams(m, undefined, spec.batch);
    assert.equal(got.total, token.total, what);
    assert.equal(got.active, want, what);
    assert.equal(activeParams(compileGpt2(spec, moeBlock(spec, m.moe)).graph, m.moe, spec), want, what);
  }
});

const quickstart = readFileSync(path.join(repoRoot, 'pipelines/quickstart.moe'), 'utf8');
const load = (text: string) => withTempFile('choice.moe', text, (file) => loadPipeline(file));

test('choice is selectable and sweepable from .moe, with its group; each trial compiles with the expert-choice kernels', () => {
  const text = quickstart.replace('    capacity dropless\n    balance 0.01\n', '    capacity 1\n    balance 0\n    choice expert(sequence)\n')
    .replace('  model.moe.top in [1, 2]', '  model.moe.choice in [token, expert]\n  model.moe.choice-group in [batch, sequence]');
  const r = load(text);
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  assert.deepEqual(r.trials.map((t) => `${t.config.model.moe!.choice}/${t.config.model.moe!.choiceGroup}`), ['token/batch', 'token/sequence', 'expert/batch', 'expert/sequence']);
  assert.ok(r.diagnostics.some((d) => d.severity === 'warning' && /expert choice is not causal/.test(d.message)), 'the leak is warned of');
  const token = compileTrial(r.trials[0]!.config);
  const expert = compileTrial(r.trials[2]!.config);
  const seq = compileTrial(r.trials[3]!.config);
  assert.equal(expert.layout.count, token.layout.count);
  assert.ok(!token.plan.kernels.some((k) => k.name.includes('ec_')) && !token.plan.kernels.some((k) => /kept\[a\]/.test(k.wgsl)));
  assert.ok(expert.plan.kernels.some((k) => /kept\[a\] = e;/.test(k.wgsl)), 'the expert-choice dispatch runs');
  // Quickstart: batch 8 × context 64, 4 experts, top 2, capacity 1: c = 256 over the batch, 32 per sequence (8 × 32 = 256 too).
  assert.ok(expert.plan.kernels.some((k) => k.wgsl.includes('(g + 1u) * 512u')), 'chosen over the micro-batch of 512 tokens');
  assert.ok(seq.plan.kernels.some((k) => k.wgsl.includes('(g + 1u) * 64u')), 'chosen over each sequence of 64 tokens');
});
