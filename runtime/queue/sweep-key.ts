// A queue sweep's identity: runs/SWEEP/queue.json holds a random token made when the sweep is first
// enqueued. Jobs carry it; a worker that finds the same token at the same path shares the run store.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../store/atomic.js';

export const QUEUE_FILE = 'queue.json';

export interface QueueRecord {
  token: string;
  /** The queue's URL without credentials. */
  queue: string;
  created: string;
}

function read(dir: string): QueueRecord | null {
  const file = path.join(dir, QUEUE_FILE);
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as QueueRecord;
    return typeof r.token === 'string' ? r : null;
  } catch {
    return null;
  }
}

/** The sweep's queue record, made on first use; re-attaching keeps the token (and so the job ids). */
export function queueRecord(dir: string, display: string): QueueRecord {
  const had = read(dir);
  if (had && had.queue === display) return had;
  const r: QueueRecord = { token: had?.token ?? randomBytes(6).toString('hex'), queue: display, created: had?.created ?? new Date().toISOString() };
  writeJsonAtomic(path.join(dir, QUEUE_FILE), r);
  return r;
}

/** The sweep's key in job ids: its name and token. */
export function sweepKey(name: string, token: string): string {
  return `${name.replace(/[^A-Za-z0-9_-]/g, '_')}-${token}`;
}

/** `dir` when this machine sees the coordinator's run directory (same path, same token), else null. */
export function sharedRunDir(dir: string, token: string): string | null {
  return read(dir)?.token === token ? dir : null;
}
