import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { corpus, filesUnder, freePort, moec, Procs, runLocally, startRedis, sweepMoe, trainLosses, trialIds, waitFor } from './harness.js';

// The same sweep over TLS with a password, with no shared run directory (--transfer: results come
// through the queue), while the coordinator is SIGKILLed and redis-server (AOF on) is stopped and
// started again mid-sweep. The restarted coordinator re-attaches without enqueueing anything twice;
// workers reconnect; the run store ends complete, equal to a one-process run, without the password.

const PASSWORD = 'pw-5ecret-not-to-be-stored';

test('Redis restarted and the coordinator killed mid-sweep: re-attached, nothing twice, results through the queue', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-queue-'));
  const procs = new Procs();
  let ok = false;
  try {
    const tls = path.join(dir, 'tls');
    mkdirSync(tls);
    const cert = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(tls, 'key.pem'), '-out', path.join(tls, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    assert.equal(cert.status, 0, cert.stderr);
    corpus(path.join(dir, 'data'));
    const file = path.join(dir, 'sweep.moe');
    writeFileSync(file, sweepMoe(path.join(dir, 'data'), 48));
    const env = { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1', MOEC_REDIS_CA: path.join(tls, 'cert.pem') };
    runLocally(file, path.join(dir, 'ref'), env);

    const port = await freePort();
    mkdirSync(path.join(dir, 'redis'));
    const redisArgs = ['--port', '0', '--tls-port', String(port), '--tls-cert-file', path.join(tls, 'cert.pem'), '--tls-key-file', path.join(tls, 'key.pem'), '--tls-ca-cert-file', path.join(tls, 'cert.pem'), '--tls-auth-clients', 'no', '--requirepass', PASSWORD, '--appendonly', 'yes', '--dir', path.join(dir, 'redis')];
    let redis = await startRedis(procs, dir, redisArgs);
    const url = `rediss://:${PASSWORD}@127.0.0.1:${port}`;
    const out = path.join(dir, 'q');
    const coordinate = () => procs.start(process.execPath, [moec, 'run', file, '--queue', url, '--out', out], { cwd: dir, env });
    const first = coordinate();
    await waitFor('the trials to be enqueued', () => /2 trials enqueued/.test(first.output()), 60_000);
    const workers = [1, 2].map((i) => procs.start(process.execPath, [moec, 'worker', '--queue', url, '--lock-seconds', '2', '--transfer', '--out', path.join(dir, `w${i}`)], { cwd: dir, env }));

    // Mid-trial (a step-8 checkpoint in a worker's own directory): kill the coordinator, stop Redis.
    await waitFor('a worker at step 8', () => [1, 2].some((i) => {
      const root = path.join(dir, `w${i}`);
      return existsSync(root) && filesUnder(root).some((f) => f.endsWith('step-8.safetensors'));
    }), 180_000, 10);
    const lockFile = path.join(out, 'sweep', '.lock');
    assert.ok(existsSync(lockFile) && !readFileSync(lockFile, 'utf8').includes(PASSWORD), 'the sweep lock records the command line without the password');
    first.child.kill('SIGKILL');
    redis.child.kill('SIGTERM'); // a clean shutdown: the AOF is flushed
    assert.equal(await redis.exited, 0, redis.output());
    await new Promise((r) => setTimeout(r, 3000)); // workers train on (and finish steps) while Redis is away
    redis = await startRedis(procs, dir, redisArgs);

    const second = coordinate();
    assert.equal(await second.exited, 0, second.output());
    assert.match(second.output(), /0 trials enqueued on rediss:\/\/127\.0\.0\.1:\d+, 2 already in the queue/);
    assert.match(second.output(), /2 done, 0 failed, 0 skipped; report: /);

    const runDir = path.join(out, 'sweep');
    const ref = path.join(dir, 'ref', 'sweep');
    assert.deepEqual(trialIds(runDir), trialIds(ref));
    for (const id of trialIds(ref)) {
      const a = trainLosses(path.join(ref, id));
      const b = trainLosses(path.join(runDir, id));
      assert.deepEqual([...b.entries()], [...a.entries()], `trial ${id}: each step once, with the one-process run's loss`);
      // What a user without a shared filesystem gets: the records and the final checkpoint.
      for (const f of ['config.json', 'plan.json', 'status.json', 'metrics.jsonl', 'experts.jsonl', 'checkpoints/step-48.safetensors']) {
        if (f === 'experts.jsonl' && !existsSync(path.join(ref, id, f))) continue;
        assert.ok(existsSync(path.join(runDir, id, f)), `${id}/${f} came through the queue`);
      }
      assert.equal(JSON.parse(readFileSync(path.join(runDir, id, 'status.json'), 'utf8')).state, 'done');
      assert.deepEqual(readdirSync(path.join(runDir, id, 'checkpoints')), ['step-48.safetensors']);
    }
    assert.ok(existsSync(path.join(runDir, 'report.md')));
    // The password is in no output and no file of the run store.
    for (const p of [first, second, ...workers]) assert.ok(!p.output().includes(PASSWORD), 'a process printed the password');
    for (const f of filesUnder(runDir)) assert.ok(!readFileSync(f).includes(PASSWORD), `${f} holds the password`);
    ok = true;
  } finally {
    await procs.stopAll(!ok);
    rmSync(dir, { recursive: true, force: true });
  }
});
