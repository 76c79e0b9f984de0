import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { compileTrial, type CompiledTrial } from '../../../compiler/lower/compile.js';
import { writeWordCorpus } from '../../../runtime/bench/word-corpus.js';
import { prepareSweepData, runSweep } from '../../../runtime/run/sweep.js';
import { RunStore } from '../../../runtime/store/run-store.js';
import { testGpu } from '../../helpers/gpu.js';

// `moec run --profile` measures a trial after it is done: if the measuring fails, the trial stays
// done (its status, checkpoint and index entry), the failure is reported for that trial, and the
// sweep's other trials go on.

const dir = mkdtempSync(path.join(tmpdir(), 'moec-profile-fail-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a profile that fails leaves the trial done and is reported with its reason', async () => {
  writeWordCorpus(path.join(dir, 'data'), { vocab: 34, seed: 11, docs: 8, words: 200 });
  const file = path.join(dir, 'p.moe');
  writeFileSync(file, `
data docs { source folder "data"; label topic; tokenizer bytes; context 16; valid 20% }
model m { layers 1; width 16; heads 2; ffn 2x }
train { steps 2; batch 2; lr 3e-3; warmup 1 }
evaluate { every 2; batches 1 }
sweep { train.seed in [1, 2] }
`);
  const load = loadPipeline(file);
  assert.ok(load.ok, JSON.stringify(load.diagnostics));
  const compiled = new Map<string, CompiledTrial>(load.trials.map((t) => [t.id, compileTrial(t.config, t.name)]));
  const data = await prepareSweepData(load.trials, () => {});
  let calls = 0;
  const programs: string[] = [];
  const r = await runSweep({
    file, load, trials: load.trials, compiled, gpu: await testGpu(), out: path.join(dir, 'runs'), resume: false, force: false,
    listener: () => {}, stop: { requested: false }, data, profile: true,
    profiler: async (_ex, program) => { calls++; programs.push(program); if (calls === 1) throw new Error('timestamp query set lost'); return { method: 'submit-per-dispatch', runs: 1, total_ms: 1, dispatches: [] }; },
  });
  assert.equal(r.done, 2);
  assert.equal(r.failed, 0);
  // The first trial's profile stops at its first program; the second's covers each program of its plan, the training step first.
  assert.equal(programs[0], 'train_step');
  assert.equal(programs.filter((p) => p === 'train_step').length, 2, 'the second trial is still trained and profiled');
  assert.deepEqual(programs.slice(1).sort(), Object.keys(compiled.get(load.trials[1]!.id)!.plan.programs).sort());
  assert.deepEqual(r.profiles!.map((p) => [p.id, p.error ?? null, Boolean(p.profile)]), [
    [load.trials[0]!.id, 'timestamp query set lost', false],
    [load.trials[1]!.id, null, true],
  ]);
  const store = RunStore.open(path.join(dir, 'runs', 'p'));
  for (const t of load.trials) {
    assert.equal(store.index.trials.find((x) => x.id === t.id)!.status, 'done');
    assert.equal(store.trial(t.id).readStatus()!.state, 'done');
  }
  assert.equal(existsSync(path.join(store.trial(load.trials[0]!.id).dir, 'profile.json')), false);
  assert.equal(existsSync(path.join(store.trial(load.trials[1]!.id).dir, 'profile.json')), true);
});
