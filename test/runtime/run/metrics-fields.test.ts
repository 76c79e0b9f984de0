// `moec run` of a tiny MoE trial: metrics.jsonl's train records carry the language-model loss as
// `loss` (ppl from it), the total and the weighted aux losses apart, and the per-layer load diagnostics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeWordCorpus } from '../../../runtime/bench/word-corpus.js';

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

const pipeline = (data: string) => `
data docs {
  source folder "${data}"
  label topic
  tokenizer bytes
  context 16
  valid 20%
}
model m {
  layers 1; width 16; heads 2; ffn 2x
  moe { experts 3; top 2; capacity 1.0; balance 0.1; zloss 0.01 }
}
train { steps 4; batch 2; lr 3e-3; seed 5 }
evaluate { every 2; batches 1 }
`;

test('metrics.jsonl: loss is the LM loss, total = loss + balance_loss + z_loss, and a moe entry per layer', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-metrics-'));
  writeWordCorpus(path.join(dir, 'data'), { vocab: 40, seed: 3, docs: 8, words: 120 });
  const file = path.join(dir, 'fields.moe');
  writeFileSync(file, pipeline(path.join(dir, 'data')));
  const r = spawnSync(process.execPath, [moec, 'run', file, '--out', path.join(dir, 'runs')], { cwd: dir, env: { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const runDir = path.join(dir, 'runs', 'fields');
  const trial = readdirSync(runDir).find((d) => existsSync(path.join(runDir, d, 'metrics.jsonl')))!;
  const rows = readFileSync(path.join(runDir, trial, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const train = rows.filter((m) => m.kind === 'train');
  assert.deepEqual(train.map((m) => m.step), [1, 2, 3, 4]);
  for (const m of train) {
    assert.ok(m.balance_loss > 0 && m.z_loss > 0, JSON.stringify(m));
    assert.ok(Math.abs(m.total - m.loss - m.balance_loss - m.z_loss) < 1e-5, `step ${m.step}: total ${m.total} vs loss ${m.loss} + aux`);
    assert.ok(Math.abs(m.ppl - Math.exp(m.loss)) < 1e-6 * m.ppl);
    assert.equal(m.moe.length, 1);
    const d = m.moe[0];
    assert.equal(d.layer, 0);
    assert.equal(d.steps, 1); // logged every step: one micro-batch per window
    for (const k of ['min', 'p10', 'median', 'p90', 'max', 'mean']) assert.equal(typeof d.tokens[k], 'number', k);
    assert.ok(Math.abs(d.tokens.mean - (2 * 16 * 2) / 3) < 1e-4, `mean tokens per expert ${d.tokens.mean}`);
    for (const k of ['overload', 'dead', 'maxShare', 'dropped', 'entropy', 'balance', 'z']) assert.equal(typeof d[k], 'number', k);
    assert.ok(Math.abs(0.1 * d.balance - m.balance_loss) < 1e-6);
  }
});
