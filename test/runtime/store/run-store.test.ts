import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { stopsTheSweep } from '../../../runtime/run/sweep.js';
import { UserError } from '../../../grammar/user-error.js';
import { RunStore, type SweepInfo } from '../../../runtime/store/run-store.js';
import { fakeTrialRecord } from './fake-sweep.js';

const info: SweepInfo = { sweep: 'demo', file: 'pipelines/demo.moe', preset: null, adapter: 'llvmpipe', trials: [{ id: 'aaaa1111', name: 'top=1,seed=1' }, { id: 'bbbb2222', name: 'top=2,seed=1' }] };
const tmp = () => path.join(mkdtempSync(path.join(tmpdir(), 'moec-store-')), 'runs', 'demo');

test('run store: layout, index mirrors status, and an existing run is refused without --force', () => {
  const dir = tmp();
  const store = RunStore.create(dir, info);
  const t = store.trial('aaaa1111');
  t.writeConfig(fakeTrialRecord('aaaa1111', 'top=1,seed=1', { 'model.moe.top': '1' }, 1));
  t.writeConfig(fakeTrialRecord('aaaa1111', 'top=1,seed=1', { 'model.moe.top': '1' }, 1)); // same content: fine
  assert.throws(() => t.writeConfig(fakeTrialRecord('aaaa1111', 'top=1,seed=1', { 'model.moe.top': '1' }, 2)), (e: unknown) =>
    e instanceof UserError && /different configuration/.test(e.message) && !stopsTheSweep(e), 'one trial\'s state: recorded with the trial, the sweep goes on');
  assert.ok(stopsTheSweep(new UserError("data set 'brown': no such file")), 'an input mistake stops the sweep');
  assert.ok(!stopsTheSweep(new Error('GPU device lost')), 'a failure inside training is the trial\'s');
  t.writePlan({ kernels: 12, buffers: 30 });
  t.writeStatus({ state: 'running', step: 0, steps: 10, started: '2026-01-01T00:00:00Z', wall_s: 0, tokens_per_s: 0, adapter: 'llvmpipe' });
  assert.deepEqual(readdirSync(t.dir).sort(), ['config.json', 'plan.json', 'status.json']);
  const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
  assert.equal(idx.sweep, 'demo');
  assert.equal(idx.file, 'pipelines/demo.moe');
  assert.deepEqual(idx.trials.map((x: { status: string }) => x.status), ['running', 'pending']);
  assert.equal(RunStore.open(dir).trial('aaaa1111').readStatus()!.state, 'running');
  assert.deepEqual(RunStore.open(dir).trial('aaaa1111').readPlan(), { kernels: 12, buffers: 30 });

  assert.throws(() => RunStore.create(dir, info), (e: unknown) => e instanceof UserError && e.where === dir && /already exists/.test(e.message) && /--resume/.test(e.hint!) && /--force/.test(e.hint!));
  const again = RunStore.open(dir);
  again.trial('bbbb2222').writeConfig(fakeTrialRecord('bbbb2222', 'top=2,seed=1', { 'model.moe.top': '2' }, 1));
  assert.equal(again.resetTrial('aaaa1111'), path.join(dir, 'aaaa1111'));
  assert.deepEqual(again.index.trials.map((x) => x.status), ['pending', 'pending']);
  assert.deepEqual(readdirSync(path.join(dir, 'aaaa1111')), [], '--force starts the trial from an empty directory');
  assert.ok(existsSync(path.join(dir, 'bbbb2222', 'config.json')), 'the trial not reset keeps its records');
  assert.equal(again.resetTrial('aaaa1111'), null, 'nothing left to remove');

  const other = path.join(path.dirname(dir), 'not-a-run');
  mkdirSync(other);
  writeFileSync(path.join(other, 'thesis.tex'), 'precious');
  assert.throws(() => RunStore.create(other, info), /holds no moec run/);
  assert.equal(readFileSync(path.join(other, 'thesis.tex'), 'utf8'), 'precious');
  assert.throws(() => RunStore.open(path.join(path.dirname(dir), 'nope')), (e: unknown) => e instanceof UserError && /no such run directory/.test(e.message));
});

test('run store: metrics tolerate a torn last line, and the next append cuts it off', () => {
  const store = RunStore.create(tmp(), info);
  const t = store.trial('aaaa1111');
  t.appendMetric({ kind: 'train', step: 1, loss: 5, lr: 1e-3, tokens_per_s: 100, time_s: 0.1 });
  t.appendMetric({ kind: 'eval', step: 1, valid_loss: 4.5, valid_ppl: Math.exp(4.5), extra: 'x' });
  const file = path.join(t.dir, 'metrics.jsonl');
  appendFileSync(file, '{"kind":"train","step":2,"lo'); // a kill -9 mid-write
  assert.deepEqual(RunStore.open(store.dir).trial('aaaa1111').readMetrics().map((m) => m.step), [1, 1]);
  const reopened = RunStore.open(store.dir).trial('aaaa1111');
  reopened.appendMetric({ kind: 'train', step: 2, loss: 4, lr: 1e-3, tokens_per_s: 100, time_s: 0.2 });
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.length, 4);
  assert.equal(lines[3], '');
  assert.deepEqual(lines.slice(0, 3).map((l) => JSON.parse(l).step), [1, 1, 2]);
  const ev = reopened.readMetrics()[1]!;
  assert.equal(ev.kind === 'eval' && ev.extra, 'x', 'extra eval fields are kept');
  writeFileSync(file, '{"kind":"train","step":1}\nnot json\n{"kind":"train","step":3}\n');
  assert.throws(() => reopened.readMetrics(), (e: unknown) => e instanceof UserError && e.where === `${file}:2`);
});

test('run store: checkpoints keep the last K, are found by scanning, and resume truncates later metrics', () => {
  const store = RunStore.create(tmp(), info, { keep: 2 });
  const t = store.trial('bbbb2222');
  assert.equal(t.latestCheckpoint(), null);
  const weights = (s: number) => ({ 'wte.weight': { shape: [2, 2], data: new Float32Array([s, s + 1, s + 2, s + 3]) } });
  for (let step = 1; step <= 10; step++) {
    t.appendMetric({ kind: 'train', step, loss: 10 - step, lr: 1e-3, tokens_per_s: 50, time_s: step });
    if (step % 2 === 0) t.appendExperts({ step, data: 'wiki.valid', label: 'language', layers: [{ layer: 0, counts: { en: [step, 1], de: [1, step] } }] });
    if (step % 3 === 0) t.saveCheckpoint(step, weights(step), { data: { position: step * 64 }, rng: [step, 7] });
  }
  // A save killed before its rename leaves only a hidden temp file: invisible to the scan.
  writeFileSync(path.join(t.checkpointDir, `.step-12.safetensors.tmp-99999`), 'partial');
  assert.deepEqual(t.checkpoints().map((c) => c.step), [6, 9]);
  assert.equal(t.latestCheckpoint()!.step, 9);

  const resumed = RunStore.open(store.dir).trial('bbbb2222');
  const ck = resumed.resume();
  assert.ok(ck);
  assert.equal(ck.step, 9);
  assert.deepEqual(ck.state, { data: { position: 576 }, rng: [9, 7] });
  assert.deepEqual([...ck.tensors.get('wte.weight')!.data], [9, 10, 11, 12]);
  assert.deepEqual(resumed.readMetrics().map((m) => m.step), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(resumed.readExperts().map((r) => r.step), [2, 4, 6, 8]);
  assert.deepEqual(readdirSync(t.checkpointDir).sort(), ['step-6.safetensors', 'step-9.safetensors']);
  resumed.appendMetric({ kind: 'train', step: 10, loss: 0, lr: 1e-3, tokens_per_s: 50, time_s: 10 });
  assert.deepEqual(resumed.readMetrics().map((m) => m.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

  const fresh = store.trial('aaaa1111');
  fresh.appendMetric({ kind: 'train', step: 1, loss: 1, lr: 1, tokens_per_s: 1, time_s: 1 });
  assert.equal(fresh.resume(), null, 'no checkpoint: start over');
  assert.deepEqual(fresh.readMetrics(), []);
});

test('run store: after kill -9 during checkpoint saves and appends, every visible file is whole and the trial resumes', async () => {
  const store = RunStore.create(tmp(), info, { keep: 3 });
  const storeUrl = new URL('../../../runtime/store/run-store.js', import.meta.url).href;
  // The child saves 2 MB checkpoints and appends metrics as fast as it can until killed.
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import { RunStore } from ${JSON.stringify(storeUrl)};
    const t = RunStore.open(${JSON.stringify(store.dir)}, { keep: 3 }).trial('aaaa1111');
    const w = new Float32Array(512 * 1024);
    for (let step = 1; ; step++) {
      t.appendMetric({ kind: 'train', step, loss: 1 / step, lr: 1e-3, tokens_per_s: 1, time_s: step });
      w.fill(step);
      t.saveCheckpoint(step, { 'h.0.mlp.c_fc.weight': { shape: [512, 1024], data: w } }, { step });
      if (step === 3) process.stdout.write('go\\n');
    }`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  await new Promise((r) => setTimeout(r, 150));
  child.kill('SIGKILL');
  await once(child, 'exit');

  const t = RunStore.open(store.dir).trial('aaaa1111');
  const cks = t.checkpoints();
  // A kill between a save's rename and the pruning of the oldest leaves one extra.
  assert.ok(cks.length >= 1 && cks.length <= 4, `kept ${cks.length}`);
  for (const c of cks) {
    const l = t.loadCheckpoint(c);
    assert.equal(l.tensors.get('h.0.mlp.c_fc.weight')!.data[524287], c.step, 'a visible checkpoint is complete');
    assert.equal(l.state.step, c.step);
  }
  const ck = t.resume()!;
  assert.equal(ck.step, cks.at(-1)!.step);
  const steps = t.readMetrics().map((m) => m.step);
  assert.deepEqual(steps, Array.from({ length: ck.step }, (_, i) => i + 1), 'metrics end at the checkpoint, no duplicates');
  assert.ok(!readdirSync(t.checkpointDir).some((n) => n.includes('.tmp-')), 'temp files of the killed save are removed on resume');
  assert.ok(t.checkpoints().length <= 3, 'resume prunes to the last K');
});

test('run store: a log that is only a torn line reads empty and is cut to nothing', () => {
  const store = RunStore.create(tmp(), info);
  const t = store.trial('aaaa1111');
  mkdirSync(t.dir, { recursive: true });
  writeFileSync(path.join(t.dir, 'experts.jsonl'), '{"step":1,"da');
  assert.deepEqual(t.readExperts(), []);
  t.appendExperts({ step: 2, data: 'd', label: 'l', layers: [] });
  assert.equal(readFileSync(path.join(t.dir, 'experts.jsonl'), 'utf8'), '{"step":2,"data":"d","label":"l","layers":[]}\n');
});

test("run store: the sweep's compare lines and zip blocks are in the index, and a resume replaces them", () => {
  const dir = tmp();
  const zips = [['model.moe.experts', 'model.moe.top']];
  RunStore.create(dir, { ...info, zips });
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')).zips, zips);
  const store = RunStore.open(dir);
  store.setAnalysis({ comparisons: [{ path: 'model.moe.top', reference: '1', by: [] }], zips: [] });
  const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
  assert.equal(idx.zips, undefined);
  assert.deepEqual(idx.comparisons, [{ path: 'model.moe.top', reference: '1', by: [] }]);
});
