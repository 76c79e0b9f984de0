import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UserError } from '../../../grammar/user-error.js';
import { openTrained } from '../../../runtime/eval/trained.js';
import { expertView } from '../../../runtime/sample/expert-view.js';
import { pickToken, sample } from '../../../runtime/sample/sample.js';
import { RunStore } from '../../../runtime/store/run-store.js';
import { testGpu } from '../../helpers/gpu.js';
import { PATTERN, trainPattern } from './trained-pattern.js';

// `moec sample` on a model trained for real: it continues the pattern it learned, the same seed
// gives the same text, and --experts names an expert of each MoE layer per generated token.

const root = mkdtempSync(path.join(tmpdir(), 'moec-sample-'));
after(() => rmSync(root, { recursive: true, force: true }));
const run = await trainPattern(root);
const trialId = RunStore.open(run.sweepDir).index.trials[0]!.id;

test('a model trained on a repeating pattern continues it (greedy)', async () => {
  const r = await sample(await testGpu(), openTrained(trialId, run.runs), { prompt: 'cdefgh', tokens: 14, temperature: 0, topK: 0, seed: 1, experts: false });
  const want = (PATTERN.repeat(4)).slice(8, 8 + 14); // what follows 'cdefgh' in the pattern
  assert.equal(r.text, want, `continued '${r.text}', expected '${want}'`);
  assert.ok(r.msPerToken > 0);
});

test('the same seed gives the same text; another seed may differ, and sampled text keeps to the pattern', async () => {
  const gpu = await testGpu();
  const t = openTrained(trialId, run.runs);
  const o = { prompt: 'abc', tokens: 20, temperature: 0.7, topK: 3, experts: true };
  const a = await sample(gpu, t, { ...o, seed: 5 });
  const b = await sample(gpu, t, { ...o, seed: 5 });
  assert.equal(a.text, b.text);
  assert.deepEqual(a.tokens, b.tokens);
  // Per generated token and MoE layer: the one expert (top 1) of two it went to.
  assert.deepEqual(a.routingLayers, [0]);
  for (const tok of a.tokens) assert.ok(tok.experts!['0']!.length === 1 && tok.experts!['0']![0]! < 2, JSON.stringify(tok));
  const view = expertView(a, false);
  assert.match(view, /^layer 0 \(first choice\): /);
  assert.match(expertView(a, true), /\x1b\[48;5;\d+m/);
});

test('pickToken: temperature 0 is argmax, top-k keeps the k likeliest, draws follow the softmax weights', () => {
  const l = Float32Array.from([0, 3, 1, 2]);
  assert.equal(pickToken(l, 0, 0, 0.99), 1);
  for (let u = 0; u < 1; u += 0.01) assert.ok([1, 3].includes(pickToken(l, 1, 2, u)));
  const counts = [0, 0, 0, 0];
  const n = 10000;
  for (let i = 0; i < n; i++) counts[pickToken(l, 1, 0, (i + 0.5) / n)]!++;
  const z = [0, 3, 1, 2].reduce((a, v) => a + Math.exp(v), 0);
  counts.forEach((c, i) => assert.ok(Math.abs(c / n - Math.exp(l[i]!) / z) < 1e-3, `token ${i}: ${c / n}`));
});

test('a label-routed model without --label is refused with the flag named', async () => {
  const t = openTrained(trialId, run.runs);
  const labelled = { ...t, record: { ...t.record, config: { ...t.record.config, model: { ...t.record.config.model, moe: { ...t.record.config.model.moe!, router: 'label' as const, label: 'language' } } } } };
  await assert.rejects(sample(await testGpu(), labelled, { prompt: 'a', tokens: 1, temperature: 0, topK: 0, seed: 1, experts: false }), (e: unknown) => e instanceof UserError && e.where === '--label');
});
