// What travels through the queue: a trial job's data (the .moe configuration, never a command),
// its progress messages and its return value. Plain JSON, checked by the side that reads it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Plan, PLAN_VERSION } from '../../compiler/plan/types.js';
import type { SweepEvent, TrialStatus } from '../train/events.js';

/** One queue for every sweep; jobs of different sweeps differ by their sweep key (see jobId). */
export const QUEUE_NAME = 'trials';
/** BullMQ's key prefix, so moec's keys stand apart from other BullMQ users of the same Redis. */
export const QUEUE_PREFIX = 'moec';

/** A Plan's schema version: a worker compiles plans of this version only. */
export const PLAN_SCHEMA_VERSION: Plan['version'] = PLAN_VERSION;

/** This moec's version, from its package.json. */
export const MOEC_VERSION: string = (() => {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'moec' && pkg.version) return pkg.version;
    }
    if (path.dirname(dir) === dir) throw new Error('moec: cannot find its own package.json');
  }
})();

export interface TrialJobData {
  moec: string;
  planSchema: number;
  sweep: {
    name: string;
    /** name + the run directory's token: two sweeps of one name in two run stores never mix. */
    key: string;
    /** The coordinator's run directory (absolute); a worker that sees it with the same token writes there. */
    dir: string;
    token: string;
  };
  trial: { id: string; name: string };
  pipeline: {
    /** The root .moe file's path on the coordinator (for messages; its text is in `sources`). */
    file: string;
    /** Every .moe file the pipeline reads (the root and its imports), by path. */
    sources: Record<string, string>;
    preset: string | null;
    /** --steps, applied to the trial as `moec run` applies it. */
    steps: number | null;
  };
  /** Compile the plain kernels only (moec run --portable). */
  portable: boolean;
}

/** BullMQ job ids may not contain ':'; trial ids and sweep keys do not. */
export function jobId(sweepKey: string, trialId: string): string {
  return `${sweepKey}.${trialId}`;
}

/** Where a trial is trained: the worker's host name and adapter. */
export interface WorkerPlace {
  host: string;
  adapter: string;
}

/** A job's progress: a trainer event, or a worker's refusal (the job goes back to the queue). */
export type TrialProgress =
  | { kind: 'event'; at: WorkerPlace; attempt: number; event: SweepEvent }
  | { kind: 'refused'; at: WorkerPlace; reason: string };

/** A file of the trial directory carried in the job's return value (no shared filesystem). */
export interface TransferredFile {
  /** Relative to the trial directory, '/'-separated. */
  path: string;
  base64: string;
}

export interface TrialJobResult {
  status: Exclude<TrialStatus, 'pending' | 'running' | 'skipped'>;
  wallSeconds: number;
  at: WorkerPlace;
  /** true: the worker wrote the coordinator's run directory itself; false: `files` carry it. */
  shared: boolean;
  files: TransferredFile[];
  /** Files too large for the queue, left in the worker's own run directory. */
  notTransferred: { path: string; bytes: number; where: string }[];
}

/** Reads a job's progress back (anything else is ignored: a job's progress is only ever ours). */
export function asProgress(x: unknown): TrialProgress | null {
  if (!x || typeof x !== 'object') return null;
  const k = (x as { kind?: unknown }).kind;
  return k === 'event' || k === 'refused' ? (x as TrialProgress) : null;
}
