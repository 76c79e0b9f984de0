import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { corpus, freePort, moec, Procs, runLocally, startRedis, sweepMoe, trainLosses, trialIds, waitFor, type Proc } from './harness.js';

// A sweep on a real redis-server with two `moec worker` processes: one is SIGKILLed in the middle of
// a trial, the other resumes it from its checkpoint (shared run store), and the sweep ends with every
// trial done once and losses equal to a one-process run, bit for bit. Beside it, on the same Redis:
// a second sweep whose data is missing on the workers (fails at once, not retried), and a job of
// another moec version (refused, left in the queue).

test('a worker killed mid-trial: the trial resumes on the other worker, done once, losses as one process', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-queue-'));
  const procs = new Procs();
  let ok = false;
  try {
    corpus(path.join(dir, 'data'));
    const file = path.join(dir, 'sweep.moe');
    writeFileSync(file, sweepMoe(path.join(dir, 'data')));
    const bad = path.join(dir, 'bad.moe');
    writeFileSync(bad, sweepMoe(path.join(dir, 'no-such-data')).replace(/sweep \{.*\}/, ''));
    const env = { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1' };
    runLocally(file, path.join(dir, 'ref'), env);

    const port = await freePort();
    await startRedis(procs, dir, ['--port', String(port), '--appendonly', 'no']);
    const url = `redis://127.0.0.1:${port}`;
    // A job from another moec: every worker must refuse it and leave it in the queue.
    const queue = new Queue('trials', { connection: { host: '127.0.0.1', port }, prefix: 'moec' });
    await queue.add('other', { moec: '0.0.0-other', planSchema: 1, sweep: { name: 'other', key: 'other-0', dir: '/nowhere', token: 'x' }, trial: { id: 'x', name: 'x' }, pipeline: { file: 'x.moe', sources: {}, preset: null, steps: null }, portable: false }, { jobId: 'other-0.x' });

    const out = path.join(dir, 'q');
    const coordinator = procs.start(process.execPath, [moec, 'run', file, '--queue', url, '--out', out], { cwd: dir, env });
    const badCoordinator = procs.start(process.execPath, [moec, 'run', bad, '--queue', url, '--out', out], { cwd: dir, env });
    await waitFor('the trials to be enqueued', () => /2 trials enqueued/.test(coordinator.output()) && /1 trial enqueued/.test(badCoordinator.output()), 60_000);
    const workers: Proc[] = [0, 1].map(() => procs.start(process.execPath, [moec, 'worker', '--queue', url, '--lock-seconds', '2'], { cwd: dir, env }));

    // A crash: SIGKILL the trial process (its pid is in the trial's lock) at the first step-4 checkpoint;
    // the worker lives, the attempt fails and the trial is retried after the backoff.
    const runDir = path.join(out, 'sweep');
    const crashed = await waitFor('a trial at its step-4 checkpoint', () => {
      if (!existsSync(runDir)) return undefined;
      for (const id of readdirSync(runDir)) {
        const lock = path.join(runDir, id, '.lock');
        if (!existsSync(path.join(runDir, id, 'checkpoints', 'step-4.safetensors')) || !existsSync(lock)) continue;
        try {
          return { id, pid: (JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }).pid };
        } catch {
          return undefined; // being written
        }
      }
      return undefined;
    }, 180_000, 10);
    process.kill(crashed.pid, 'SIGKILL');

    // Kill the worker of the first trial to reach its step-8 checkpoint, before it finishes.
    const victim = await waitFor('a trial at its step-8 checkpoint', () => {
      if (!existsSync(runDir)) return undefined;
      for (const id of readdirSync(runDir)) {
        if (!existsSync(path.join(runDir, id, 'checkpoints', 'step-8.safetensors'))) continue;
        const w = workers.find((x) => new RegExp(`trial ${id} \\(`).test(x.output()) && !new RegExp(`trial ${id}: done`).test(x.output()));
        if (w) return { id, w };
      }
      return undefined;
    }, 180_000, 10);
    victim.w.child.kill('SIGKILL');
    const survivor = workers.find((w) => w !== victim.w)!;

    assert.equal(await coordinator.exited, 0, coordinator.output());
    assert.match(coordinator.output(), /2 done, 0 failed, 0 skipped; report: /);
    assert.match(coordinator.output(), /stopped answering; the trial is back in the queue/);
    assert.match(coordinator.output(), new RegExp(`start +${victim.id} .*resumed at step (8|12|16|20|24|28)`));
    assert.match(survivor.output(), new RegExp(`trial ${victim.id}: done`));
    assert.match(coordinator.output(), /attempt 1 of 3 failed: the trial process ended without a result \(signal SIGKILL\)/);
    assert.match(coordinator.output(), new RegExp(`start +${crashed.id} .*resumed at step`));

    // Every trial once, with the one-process run's losses, the index and the report written.
    const ref = path.join(dir, 'ref', 'sweep');
    assert.deepEqual(trialIds(runDir), trialIds(ref));
    for (const id of trialIds(ref)) {
      const a = trainLosses(path.join(ref, id));
      const b = trainLosses(path.join(runDir, id));
      assert.deepEqual([...b.keys()], [...a.keys()], `trial ${id}: the same steps, each once`);
      assert.deepEqual([...b.values()], [...a.values()], `trial ${id}: the same losses, bit for bit`);
      assert.equal(JSON.parse(readFileSync(path.join(runDir, id, 'status.json'), 'utf8')).state, 'done');
    }
    const index = JSON.parse(readFileSync(path.join(runDir, 'index.json'), 'utf8')) as { trials: { status: string }[] };
    assert.deepEqual(index.trials.map((t) => t.status), ['done', 'done']);
    assert.ok(existsSync(path.join(runDir, 'report.md')));

    // The sweep with missing data failed at once with the data's message, on one attempt.
    assert.equal(await badCoordinator.exited, 1, badCoordinator.output());
    assert.match(badCoordinator.output(), /0 done, 1 failed/);
    assert.match(badCoordinator.output(), /no-such-data/);
    assert.doesNotMatch(badCoordinator.output(), /attempt \d+ of \d+ failed|after \d+ attempts/);
    assert.match(workers.map((w) => w.output()).join(''), /failed \(not retried\)/);

    // The other version's job is still in the queue, never failed.
    assert.match(workers.map((w) => w.output()).join(''), /refusing trial x: compiled by moec 0\.0\.0-other/);
    const other = (await queue.getJob('other-0.x'))!;
    assert.ok(['delayed', 'waiting', 'active'].includes(await other.getState()), await other.getState());
    assert.equal(other.attemptsMade, 0);
    await queue.close();
    ok = true;
  } finally {
    await procs.stopAll(!ok);
    rmSync(dir, { recursive: true, force: true });
  }
});
