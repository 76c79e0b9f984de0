import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tidySweep } from '../../../runtime/run/sweep.js';
import { RunStore } from '../../../runtime/store/run-store.js';

// Before a run trains, the sweep directory is tidied under its lock: temp files of dead writers go,
// and index.json agrees with the trials' status.json, never "running" for a trial that is not.

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');
const lockModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/store/lock.js');
const deadPid = () => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
const status = (state: 'running' | 'done' | 'stopped', step: number) => ({ state, step, steps: 10, started: '2026-01-01T00:00:00Z', wall_s: 1, tokens_per_s: 1, adapter: 'x' });

test('tidySweep: dead writers\' temp files go, index.json follows status.json, an orphaned "running" becomes stopped', async () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'moec-tidy-')), 'sweep');
  const trials = [{ id: 'aaaa', name: 'a' }, { id: 'bbbb', name: 'b' }, { id: 'cccc', name: 'c' }, { id: 'dddd', name: 'd' }];
  const store = RunStore.create(dir, { sweep: 'sweep', file: 'x.moe', preset: null, adapter: 'x', trials });
  store.trial('aaaa').writeStatus(status('done', 10));
  store.setTrialStatus('aaaa', 'running'); // as a kill between status.json and index.json leaves it
  store.trial('bbbb').writeStatus(status('running', 4)); // its process died
  store.trial('cccc').writeStatus(status('running', 6)); // its process lives (holds the trial lock)
  store.setTrialStatus('dddd', 'running'); // died before its first status.json
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `import { acquireLock } from ${JSON.stringify(lockModule)}; acquireLock(${JSON.stringify(path.join(dir, 'cccc', '.lock'))}, 'train trial cccc'); process.stdout.write('held'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
  const old = new Date(Date.now() - 120_000);
  const dead = path.join(dir, `.index.json.tmp-${deadPid()}`);
  const live = path.join(dir, `.plan.json.tmp-${process.pid}`);
  const fresh = path.join(dir, `.index.json.tmp-${deadPid()}`);
  for (const f of [dead, live]) { writeFileSync(f, '{'); utimesSync(f, old, old); }
  writeFileSync(fresh, '{'); // a dead pid here, but new: perhaps another host's writer, mid-write
  try {
    tidySweep(RunStore.open(dir));
  } finally {
    holder.kill('SIGTERM');
  }
  assert.equal(existsSync(dead), false, 'a dead writer\'s old temp file is removed');
  assert.equal(existsSync(live), true, 'a live writer\'s temp file is kept');
  assert.equal(existsSync(fresh), true, 'a recent temp file is kept');
  const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { trials: { status: string }[] };
  assert.deepEqual(idx.trials.map((t) => t.status), ['done', 'stopped', 'running', 'pending']);
  const b = RunStore.open(dir).trial('bbbb').readStatus()!;
  assert.equal(b.state, 'stopped');
  assert.match(b.error!, /interrupted/);
});

test('moec run --out at a regular file: a clear error naming --out, no stack trace', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-outfile-'));
  const file = path.join(dir, 'x.moe');
  writeFileSync(file, 'data d { source text "a.txt"; tokenizer bytes; context 16 }\nmodel m { layers 1; width 16; heads 2 }\ntrain { steps 2 }\n');
  writeFileSync(path.join(dir, 'notadir'), 'precious');
  const r = spawnSync(process.execPath, [moec, 'run', file, '--out', path.join(dir, 'notadir')], { cwd: dir, encoding: 'utf8', env: { ...process.env, MOEC_CACHE: path.join(dir, 'cache') } });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /--out: error: '.*notadir' is a file, not a directory\n  hint: name a directory/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.equal(readFileSync(path.join(dir, 'notadir'), 'utf8'), 'precious');
});
