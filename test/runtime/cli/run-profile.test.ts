import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeWordCorpus } from '../../../runtime/bench/word-corpus.js';
import type { TrialProfile } from '../../../runtime/run/dispatch-profile.js';

// `moec run --profile`: a real run of a tiny MoE model on the adapter, which prints the training
// step's time per dispatch after the sweep, says how it was measured, and keeps it per trial.

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

test('moec run --profile prints each trial\'s step time per dispatch and writes profile.json', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-profile-'));
  try {
    writeWordCorpus(path.join(dir, 'data'), { vocab: 34, seed: 11, docs: 8, words: 200 });
    const file = path.join(dir, 'p.moe');
    writeFileSync(file, `
data docs { source folder "${path.join(dir, 'data')}"; label topic; tokenizer bytes; context 16; valid 20% }
model m { layers 1; width 16; heads 2; ffn 2x; moe { experts 3; top 2 } }
train { steps 2; batch 2; lr 3e-3; warmup 1; seed 5 }
evaluate { every 2; batches 1 }
`);
    const env = { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1' };
    const r = spawnSync(process.execPath, [moec, 'run', file, '--out', path.join(dir, 'runs'), '--profile'], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const head = /^trial ([0-9a-f]+) \(base\): ([\d.]+) ms per step over (\d+) dispatches \(mean of 3 runs; (GPU timestamps|host clock around one submit per dispatch)/m.exec(r.stdout);
    assert.ok(head, r.stdout);
    const saved = JSON.parse(readFileSync(path.join(dir, 'runs', 'p', head[1]!, 'profile.json'), 'utf8')) as TrialProfile;
    assert.equal(saved.dispatches.length, Number(head[3]));
    assert.equal(saved.method === 'timestamp-queries', head[4] === 'GPU timestamps');
    assert.ok(saved.dispatches.some((d) => d.kernel.startsWith('moe_')), 'the MoE kernels are among them');
    assert.ok(saved.dispatches.every((d, i) => d.ms >= 0 && (i === 0 || d.ms <= saved.dispatches[i - 1]!.ms)), 'slowest first');
    assert.ok(Math.abs(saved.total_ms - saved.dispatches.reduce((s, d) => s + d.ms, 0)) < 1e-6);
    assert.match(r.stdout, /^ +[\d.]+ ms +[\d.]+% {2}\S+/m, 'a row per dispatch');
    // Every program of the plan, each with its own dispatches; the training step's is the top level.
    assert.deepEqual(Object.keys(saved.programs).sort(), ['eval_step', 'micro_step', 'moe_stats', 'train_step', 'update', 'zero_grads']);
    assert.deepEqual(saved.programs['train_step']!.dispatches.length, saved.dispatches.length);
    assert.ok(saved.programs['eval_step']!.dispatches.length > 0 && saved.programs['eval_step']!.dispatches.every((d) => d.ms >= 0));
    assert.match(r.stdout, /^ {2}eval_step: [\d.]+ ms over \d+ dispatches \(slowest: /m, 'a line per other program');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('moec run --profile with --queue is refused, naming the flag', () => {
  const r = spawnSync(process.execPath, [moec, 'run', 'x.moe', '--profile', '--queue', 'redis://127.0.0.1:1'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--profile: error: --profile applies to a sweep trained here, not with --queue/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});
