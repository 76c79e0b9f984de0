import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Attempt } from '../../../runtime/status/attempts.js';
import { formatStatus, storeStatus, sweepStatus, type StatusSource } from '../../../runtime/status/sweep-status.js';
import { RunStore } from '../../../runtime/store/run-store.js';

// `moec status` on a run store holding a trial in each state, written the way moec writes them.

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

function store() {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'moec-status-')), 'sw');
  const ids = ['a-done', 'b-running', 'c-failed', 'd-stopped', 'e-pending'];
  const s = RunStore.create(dir, { sweep: 'sw', file: '/x/sw.moe', preset: null, adapter: 'lavapipe', trials: ids.map((id) => ({ id, name: `trial ${id}` })) });
  const base = { steps: 40, started: '2026-01-01T00:00:00Z', wall_s: 3, tokens_per_s: 100, adapter: 'lavapipe' };
  const slurm = (task: number, restarts: number) => ({ job_id: String(100 + task + restarts * 10), array_job_id: '99', array_task_id: task, restarts });

  const a = s.trial('a-done');
  new Attempt(a.dir, 'slurm-task').start(slurm(0, 0));
  a.writeStatus({ state: 'done', step: 40, ...base });
  new Attempt(a.dir, 'slurm-task').end('done', { step: 40 });

  const b = s.trial('b-running');
  const bAttempt = new Attempt(b.dir, 'slurm-task');
  bAttempt.start(slurm(1, 0));
  bAttempt.end('stopped', { step: 8, signal: 'SIGTERM' });
  new Attempt(b.dir, 'slurm-task').start(slurm(1, 1));
  b.writeStatus({ state: 'running', step: 8, ...base });
  // Train metrics run ahead of status.json (written at evaluations).
  for (const step of [9, 10, 11]) b.appendMetric({ kind: 'train', step, loss: 2, lr: 1e-3, tokens_per_s: 100, time_s: step });

  const c = s.trial('c-failed');
  new Attempt(c.dir, 'slurm-task').start(slurm(2, 0));
  c.writeStatus({ state: 'failed', step: 0, ...base, error: 'training loss is NaN at step 3: the run diverged' });

  const d = s.trial('d-stopped');
  new Attempt(d.dir, 'slurm-task').start(slurm(3, 2));
  d.writeStatus({ state: 'stopped', step: 12, ...base });
  new Attempt(d.dir, 'slurm-task').end('stopped', { step: 12, signal: 'SIGUSR1' });
  return dir;
}

test('the store view: each state, where, why, attempts and requeues', () => {
  const dir = store();
  const s = storeStatus(dir);
  const by = new Map(s.trials.map((t) => [t.id, t]));
  assert.deepEqual(s.trials.map((t) => t.state), ['done', 'running', 'failed', 'stopped', 'pending']);
  assert.equal(by.get('b-running')!.step, 11, 'the newest metric, not the older status.json step');
  assert.match(by.get('b-running')!.where!, /^\S+ pid \d+, Slurm job 99_1 \(111\)$/);
  assert.equal(by.get('b-running')!.attempts, 2);
  assert.equal(by.get('b-running')!.requeued, 1);
  assert.equal(by.get('c-failed')!.why, 'training loss is NaN at step 3: the run diverged');
  assert.equal(by.get('d-stopped')!.why, 'stopped by SIGUSR1 at step 12');
  assert.equal(by.get('d-stopped')!.requeued, 2);
  assert.equal(by.get('e-pending')!.attempts, 0);
  assert.equal(by.get('e-pending')!.steps, 0, 'a trial never started has no config yet');

  const text = formatStatus(s);
  assert.match(text, /^sw \(.*\/sw\): 5 trials: 1 running, 1 pending, 1 stopped, 1 failed, 1 done$/m);
  assert.match(text, /b-running +running +11\/40 +trial b-running\n +on \S+ pid \d+, Slurm job 99_1 \(111\); 2 attempts, requeued 1×/);
  assert.match(text, /c-failed +failed +0\/40 .*\n +last on .*; training loss is NaN at step 3/);
  assert.match(text, /d-stopped +stopped +12\/40 .*\n +last on .*requeued 2×; stopped by SIGUSR1 at step 12/);
  assert.match(text, /a-done +done +40\/40 +trial a-done$/m);
  // Sorted: running first, done last.
  assert.ok(text.indexOf('b-running') < text.indexOf('e-pending') && text.indexOf('e-pending') < text.indexOf('a-done'));
});

test('a source refines the store view (the interface the queue and Slurm use)', async () => {
  const dir = store();
  const src: StatusSource = {
    name: 'test',
    annotate(s) {
      const e = s.trials.find((t) => t.id === 'e-pending')!;
      e.state = 'queued';
      e.why = 'waiting in the queue';
      s.notes.push('test source: 1 waiting');
    },
  };
  const s = await sweepStatus(dir, [src]);
  const text = formatStatus(s);
  assert.match(text, /e-pending +queued .*\n +waiting in the queue/);
  assert.match(text, /test source: 1 waiting$/);
});

test('moec status prints the same from the command line, --json too, and names a bad directory', () => {
  const dir = store();
  const env = { ...process.env, PATH: '/nonexistent' };
  const r = spawnSync(process.execPath, [moec, 'status', dir], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /5 trials: 1 running, 1 pending, 1 stopped, 1 failed, 1 done/);
  const j = spawnSync(process.execPath, [moec, 'status', dir, '--json'], { encoding: 'utf8', env });
  const parsed = JSON.parse(j.stdout) as { trials: { id: string; state: string; attempts: number }[] };
  assert.deepEqual(parsed.trials.map((t) => [t.id, t.state, t.attempts]), [['a-done', 'done', 1], ['b-running', 'running', 2], ['c-failed', 'failed', 1], ['d-stopped', 'stopped', 1], ['e-pending', 'pending', 0]]);
  const missing = spawnSync(process.execPath, [moec, 'status', path.join(dir, 'nope')], { encoding: 'utf8', env });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope: error: no such run directory/);
  // A damaged attempts log is named with its line.
  appendFileSync(path.join(dir, 'a-done', 'attempts.jsonl'), '{oops\n');
  const bad = spawnSync(process.execPath, [moec, 'status', dir], { encoding: 'utf8', env });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /a-done\/attempts\.jsonl:3: error: line 3 is not valid JSON/);
});
