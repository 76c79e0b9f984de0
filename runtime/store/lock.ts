// Lock files: one writer per sweep directory and per trial, across processes and hosts.
//
// A lock is a small JSON file naming its holder. It is created complete or not at all: the record
// is written to a private temp file that is then hard-linked to the lock's name, which fails with
// EEXIST if the name exists (the O_EXCL guarantee, and one that holds on NFS too). While held, its
// mtime is refreshed every few seconds by a thread of its own (the heartbeat, lock-heartbeat.ts), so another host can tell a live holder from
// a dead one. A lock is stale when its holder is on this host and its pid is gone, or on another
// host and its heartbeat is older than the stale timeout; a stale lock is taken over.
//
// Levels: runs/SWEEP/.lock (moec run), runs/SWEEP/TRIAL/.lock (whatever trains that trial: a local
// run, a queue worker, a Slurm array task), runs/SWEEP/.index.lock (held for the milliseconds of a
// read-modify-write of index.json).
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { UserError } from '../../grammar/user-error.js';
import { DiskFullError, isDiskFull } from './atomic.js';
import type { HeartbeatMessage } from './lock-heartbeat.js';

/** What a lock file holds. */
export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** What the holder does, e.g. "moec run (sweep)" or "train trial abc123". */
  purpose: string;
  /** The holder's command line. */
  command: string;
  version: string;
  /** Unique per acquisition: tells this holder's lock from a successor's with the same pid. */
  token: string;
}

export interface LockOptions {
  /** A lock of another host whose heartbeat is older than this is stale (ms; default MOEC_LOCK_STALE_S or 60 s). */
  staleMs?: number;
  /** How often the heartbeat refreshes the file's mtime (ms; default 5 s). */
  heartbeatMs?: number;
  /** Wait up to this long for a held lock before refusing (ms; default 0: refuse at once). */
  waitMs?: number;
  /** The advice printed when the lock is held. */
  hint?: string;
}

export interface Lock {
  readonly file: string;
  readonly info: LockInfo;
  /** True once another process took the lock over (this holder's heartbeat was too old). */
  readonly lost: boolean;
  /** Remove the lock (only if it is still this holder's). Idempotent. */
  release(): void;
}

/** Raised when a lock is held by a live holder. */
export class LockHeldError extends UserError {
  constructor(readonly file: string, readonly holder: LockInfo | null, hint: string | undefined) {
    super(holder ? `locked by ${describeHolder(holder)}` : 'locked (the lock file is unreadable and its heartbeat is recent)', {
      where: file,
      hint: hint ?? `wait for it to finish, or stop it (kill ${holder?.pid ?? 'PID'} on ${holder?.host ?? 'its host'}); a lock whose holder died is taken over automatically`,
    });
    this.name = 'LockHeldError';
  }
}

export function describeHolder(h: LockInfo): string {
  return `pid ${h.pid} on ${h.host} since ${h.started} (${h.purpose}: ${h.command})`;
}

const DEFAULT_HEARTBEAT_MS = 5_000;
function defaultStaleMs(): number {
  const s = Number(process.env.MOEC_LOCK_STALE_S);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 60_000;
}

let version: string | undefined;
function moecVersion(): string {
  if (version === undefined) {
    try {
      version = String((JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

/** The lock file's record, or null when it is missing or unreadable (a torn write is impossible: see above). */
export function readLock(file: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
    return typeof v.pid === 'number' && typeof v.host === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** True when `pid` is a live process on this host (EPERM: alive, owned by another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** Why the lock at `file` (record `info`, last heartbeat `mtimeMs`) is stale, or undefined while its holder lives. */
export function staleReason(info: LockInfo | null, mtimeMs: number, staleMs: number, now = Date.now()): string | undefined {
  const age = now - mtimeMs;
  if (info && info.host === hostname()) {
    if (info.pid === process.pid) return undefined; // ours (another acquisition in this process): held
    return pidAlive(info.pid) ? undefined : `its holder, pid ${info.pid} on this host, is no longer running`;
  }
  if (age > staleMs) return `${info ? `its holder on ${info.host}` : 'its unreadable holder'} has not refreshed it for ${Math.round(age / 1000)} s (timeout ${Math.round(staleMs / 1000)} s)`;
  return undefined;
}

const held = new Set<HeldLock>();
let hooksInstalled = false;

function releaseAll(): void {
  for (const l of [...held]) l.release();
}

/**
 * Release every lock when the process ends: on exit (including process.exit), and on SIGINT and
 * SIGTERM where nothing else handles them (then the signal is re-raised so the exit status is the
 * usual one). A command that handles the signals itself (moec run stops after the step) exits
 * normally afterwards, and the exit hook releases.
 */
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', releaseAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      if (process.listenerCount(sig) > 1) return; // someone else decides what the signal does
      releaseAll();
      process.off(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

let heart: Worker | undefined;

/** The heartbeat thread, started with the first lock; it never keeps the process alive. */
function heartbeat(): Worker {
  if (!heart) {
    // Not the parent's execArgv: `node --input-type=module -e` (or --eval) must not apply to a file.
    heart = new Worker(new URL('./lock-heartbeat.js', import.meta.url), { execArgv: [] });
    heart.on('message', (m: { lost: string; token: string }) => {
      for (const l of held) if (l.file === m.lost && l.info.token === m.token) l.takenOver();
    });
    heart.on('error', (e) => process.stderr.write(`warning: the lock heartbeat stopped (${e.message}); locks held by this process may be taken over by another host\n`));
    heart.unref(); // after the listeners, which would ref it again
  }
  return heart;
}

class HeldLock implements Lock {
  private released = false;
  lost = false;

  constructor(readonly file: string, readonly info: LockInfo, heartbeatMs: number) {
    heartbeat().postMessage({ add: { file, token: info.token, everyMs: heartbeatMs } } satisfies HeartbeatMessage);
    held.add(this);
  }

  private mine(): boolean {
    return readLock(this.file)?.token === this.info.token;
  }

  takenOver(): void {
    if (this.released || this.lost) return;
    this.lost = true;
    process.stderr.write(`warning: ${this.file}: this lock was taken over by another process (its heartbeat was late)\n`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    heart?.postMessage({ remove: this.file } satisfies HeartbeatMessage);
    held.delete(this);
    try {
      if (this.mine()) unlinkSync(this.file);
    } catch {
      // Already gone (removed with its directory): nothing to release.
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Create `file` holding `info`, atomically and only if it does not exist. False if it exists. */
function tryCreate(file: string, info: LockInfo): boolean {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.new-${process.pid}-${info.token}`);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      const buf = Buffer.from(`${JSON.stringify(info)}\n`);
      writeSync(fd, buf, 0, buf.byteLength);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    rmSync(tmp, { force: true });
    throw isDiskFull(e) ? new DiskFullError(file) : e;
  }
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // No hard links here (some FUSE and FAT mounts): O_EXCL directly; a reader may see it empty for a moment.
    return createExclusive(file, info);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function createExclusive(file: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (e) {
    if ((e as { code?: string }).code === 'EEXIST') return false;
    throw e;
  }
  try {
    const buf = Buffer.from(`${JSON.stringify(info)}\n`);
    writeSync(fd, buf, 0, buf.byteLength);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Remove a stale lock without removing a live one that replaced it meanwhile: the file is renamed
 * to a private name (only one contender can move a given file), then checked to be the one judged
 * stale; a live lock moved by mistake is put back.
 */
function removeStale(file: string, judged: LockInfo | null): void {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return; // another contender moved it first
    throw e;
  }
  const moved = readLock(aside);
  if (judged && moved?.token !== judged.token) {
    try {
      linkSync(aside, file);
    } catch {
      // The name was taken again meanwhile: the newer holder keeps it.
    }
  }
  rmSync(aside, { force: true });
}

/**
 * Take the lock at `file` for `purpose`, or throw a LockHeldError naming its holder. A stale lock
 * is taken over, with a note on stderr. The lock is released by `release()`, or when the process exits.
 */
export function acquireLock(file: string, purpose: string, opts: LockOptions = {}): Lock {
  const staleMs = opts.staleMs ?? defaultStaleMs();
  const heartbeatMs = opts.heartbeatMs ?? Math.min(DEFAULT_HEARTBEAT_MS, Math.max(50, staleMs / 4));
  const deadline = Date.now() + (opts.waitMs ?? 0);
  try {
    mkdirSync(path.dirname(file), { recursive: true });
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new UserError(code === 'EEXIST' || code === 'ENOTDIR' ? 'a file is in the way of this directory' : `cannot create the directory (${code ?? String(e)})`, {
      where: path.dirname(file), hint: 'choose another output directory with --out',
    });
  }
  const info: LockInfo = {
    pid: process.pid, host: hostname(), started: new Date().toISOString(), purpose,
    command: [path.basename(process.argv[0] ?? 'node'), ...process.argv.slice(1)].map((a) => (/^[\w./=:,@+-]+$/.test(a) ? a : JSON.stringify(a))).join(' '),
    version: moecVersion(), token: randomBytes(8).toString('hex'),
  };
  for (let attempt = 0; ; attempt++) {
    if (tryCreate(file, info)) {
      installHooks();
      return new HeldLock(file, info, heartbeatMs);
    }
    const holder = readLock(file);
    let mtime: number;
    try {
      mtime = statSync(file).mtimeMs;
    } catch {
      continue; // released between our attempt and the look: try again
    }
    const stale = staleReason(holder, mtime, staleMs);
    if (stale) {
      process.stderr.write(`note: ${file}: taking over a stale lock: ${stale}\n`);
      removeStale(file, holder);
      continue;
    }
    if (Date.now() >= deadline || attempt > 10_000) throw new LockHeldError(file, holder, opts.hint);
    sleepSync(Math.min(20 + attempt * 5, 200));
  }
}

/** The lock of a whole sweep directory (moec run holds it for the run). */
export function sweepLockPath(sweepDir: string): string {
  return path.join(sweepDir, '.lock');
}

/** The lock of one trial (whatever trains it holds it). */
export function trialLockPath(trialDir: string): string {
  return path.join(trialDir, '.lock');
}

/** Hold `file`'s lock (waiting up to 10 s) while `fn` runs: for short read-modify-writes. */
export function withLock<T>(file: string, purpose: string, fn: () => T): T {
  const lock = acquireLock(file, purpose, { waitMs: 10_000 });
  try {
    return fn();
  } finally {
    lock.release();
  }
}
