import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock, LockHeldError, readLock, staleReason, type LockInfo } from '../../../runtime/store/lock.js';
import { RunStore } from '../../../runtime/store/run-store.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const lockModule = path.resolve(here, '../../../runtime/store/lock.js');
const storeModule = path.resolve(here, '../../../runtime/store/run-store.js');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'moec-lock-'));

/** A child process that takes `file`'s lock, says "held" and waits (until killed). */
function holder(file: string, purpose = 'test holder') {
  const code = `import { acquireLock } from ${JSON.stringify(lockModule)};
acquireLock(${JSON.stringify(file)}, ${JSON.stringify(purpose)}, { heartbeatMs: 50 });
process.stdout.write('held\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('held')) resolve(); });
    child.on('exit', (c) => reject(new Error(`holder exited with ${c}`)));
  });
  return { child, ready, exited: new Promise<void>((r) => child.on('exit', () => r())) };
}

/** The pid of a process that has exited. */
const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);

function fakeLock(file: string, over: Partial<LockInfo>): void {
  const info: LockInfo = { pid: 1, host: hostname(), started: '2026-01-01T00:00:00.000Z', purpose: 'old run', command: 'moec run x.moe', version: '0', token: 'feedface', ...over };
  writeFileSync(file, JSON.stringify(info));
}

test('a lock holds its holder; a second taker is refused with pid, host, start, purpose and command', async () => {
  const file = path.join(tmp(), 'sweep', '.lock');
  const h = holder(file, 'moec run (the whole sweep)');
  await h.ready;
  try {
    const info = readLock(file)!;
    assert.equal(info.pid, h.child.pid);
    assert.equal(info.host, hostname());
    assert.match(info.version, /^\d+\.\d+/);
    assert.throws(() => acquireLock(file, 'second'), (e: unknown) => {
      assert.ok(e instanceof LockHeldError);
      assert.equal(e.where, file);
      assert.match(e.message, new RegExp(`pid ${h.child.pid} on ${hostname()} since ${info.started.replace(/[.]/g, '\\.')}`));
      assert.match(e.message, /moec run \(the whole sweep\)/);
      assert.match(e.message, /: node\b/); // the holder's command line
      assert.ok(e.hint);
      return true;
    });
  } finally {
    h.child.kill('SIGTERM');
    await h.exited;
  }
  // SIGTERM with no handler of the program's own: the lock is released before the process dies.
  assert.equal(existsSync(file), false, 'SIGTERM left the lock behind');
  acquireLock(file, 'after').release();
});

test('a lock is released on SIGINT and on a normal exit', async () => {
  const file = path.join(tmp(), '.lock');
  const h = holder(file);
  await h.ready;
  h.child.kill('SIGINT');
  await h.exited;
  assert.equal(existsSync(file), false, 'SIGINT left the lock behind');
  const code = `import { acquireLock } from ${JSON.stringify(lockModule)}; acquireLock(${JSON.stringify(file)}, 'exit'); process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code]);
  assert.equal(r.status, 0);
  assert.equal(existsSync(file), false, 'process.exit left the lock behind');
});

test('a lock whose holder on this host died is stale and taken over, with a note', () => {
  const file = path.join(tmp(), '.lock');
  fakeLock(file, { pid: deadPid() });
  const lock = acquireLock(file, 'new');
  assert.equal(readLock(file)!.pid, process.pid);
  lock.release();
  assert.equal(existsSync(file), false);
});

test("another host's lock is stale only once its heartbeat is older than the timeout", () => {
  const file = path.join(tmp(), '.lock');
  fakeLock(file, { host: 'some-other-host', pid: 4242 });
  assert.throws(() => acquireLock(file, 'new', { staleMs: 60_000 }), (e: unknown) => e instanceof LockHeldError && /pid 4242 on some-other-host/.test(e.message));
  const old = new Date(Date.now() - 120_000);
  utimesSync(file, old, old);
  const lock = acquireLock(file, 'new', { staleMs: 60_000 });
  assert.equal(readLock(file)!.host, hostname());
  lock.release();
});

test('the heartbeat refreshes the mtime; release leaves a successor\'s lock alone', async () => {
  const file = path.join(tmp(), '.lock');
  const lock = acquireLock(file, 'beating', { heartbeatMs: 30 });
  const old = new Date(Date.now() - 100_000);
  utimesSync(file, old, old);
  await new Promise((r) => setTimeout(r, 150));
  const { mtimeMs } = statSync(file);
  assert.ok(Date.now() - mtimeMs < 5_000, 'the heartbeat did not refresh the lock');
  // Someone took it over (as if our heartbeat had been late): our release must not remove theirs.
  fakeLock(file, { host: 'other', token: 'successor' });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(lock.lost, true);
  lock.release();
  assert.equal(readLock(file)!.token, 'successor');
});

test('the heartbeat goes on while the main thread is blocked, so another host does not take a live lock over', async () => {
  const file = path.join(tmp(), '.lock');
  const lock = acquireLock(file, 'blocked', { heartbeatMs: 30, staleMs: 1_000 });
  await new Promise((r) => setTimeout(r, 100)); // the heartbeat thread is up
  const old = new Date(Date.now() - 100_000);
  utimesSync(file, old, old);
  // Block this thread for three stale timeouts (a long synchronous compile, say).
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3_000);
  const { mtimeMs } = statSync(file);
  assert.ok(Date.now() - mtimeMs < 1_000, `the lock was last refreshed ${Date.now() - mtimeMs} ms ago`);
  // As another host sees it: live.
  assert.equal(staleReason({ ...readLock(file)!, host: 'other-host' }, mtimeMs, 1_000), undefined);
  lock.release();
  assert.equal(existsSync(file), false);
});

test('waitMs waits for a short-held lock', async () => {
  const file = path.join(tmp(), '.lock');
  const h = holder(file);
  await h.ready;
  setTimeout(() => h.child.kill('SIGTERM'), 200);
  // acquireLock's wait blocks this thread; the kill above fires on a timer, so run the wait in a child.
  const code = `import { acquireLock } from ${JSON.stringify(lockModule)}; acquireLock(${JSON.stringify(file)}, 'waiter', { waitMs: 20000 }).release(); process.stdout.write('ok');`;
  const r = await new Promise<string>((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    c.on('exit', () => resolve(out));
  });
  await h.exited;
  assert.equal(r, 'ok');
});

test('index.json keeps every trial\'s status when several processes update it at once', async () => {
  const dir = path.join(tmp(), 'sweep');
  const n = 6;
  const trials = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, name: `trial ${i}` }));
  RunStore.create(dir, { sweep: 'sweep', file: 'x.moe', preset: null, adapter: 'a', trials });
  // Each process flips its own trial through the states many times; without the index lock, their
  // read-modify-writes overwrite each other's trials.
  const code = (id: string) => `import { RunStore } from ${JSON.stringify(storeModule)};
const s = RunStore.open(${JSON.stringify(dir)});
for (let i = 0; i < 20; i++) s.setTrialStatus(${JSON.stringify(id)}, i % 2 ? 'running' : 'stopped');
s.setTrialStatus(${JSON.stringify(id)}, 'done');`;
  const runs = trials.map((t) => new Promise<number | null>((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code(t.id)], { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('exit', (status) => resolve(status));
  }));
  assert.deepEqual(await Promise.all(runs), trials.map(() => 0));
  const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { trials: { id: string; status: string }[] };
  assert.deepEqual(idx.trials.map((t) => t.status), trials.map(() => 'done'));
  assert.equal(existsSync(path.join(dir, '.index.lock')), false);
});
