import path from 'node:path';
import type { LoadResult, Trial } from '../../compiler/frontend/index.js';
import type { CompiledTrial } from '../../compiler/lower/compile.js';
import type { PlanExecutor } from '../executor/executor.js';
import { type DispatchProfile, profileDispatches, type TrialProfile } from './dispatch-profile.js';
import { UserError } from '../../grammar/user-error.js';
import type { Gpu } from '../gpu/device.js';
import { writeReport } from '../report/report.js';
import { LockHeldError, type Lock } from '../store/lock.js';
import { checkResumable, forceTrials, lockSweep, takeTrial, tidySweep } from './sweep-dir.js';
import { RunStore } from '../store/run-store.js';
import type { SweepListener } from '../train/events.js';
import type { SweepData } from './sweep-data.js';
import { recordTrialFailure, trainOneTrial, trialInfo, type TrialRunContext } from './trial-runner.js';

export { prepareSweepData, SweepData } from './sweep-data.js';
// The sweep directory's locks and housekeeping, for every trainer (queue workers, Slurm tasks too).
export { lockSweep, takeTrial, tidySweep } from './sweep-dir.js';

export interface SweepOptions {
  file: string;
  load: LoadResult;
  trials: Trial[];
  compiled: Map<string, CompiledTrial>;
  gpu: Gpu;
  out: string;
  resume: boolean;
  force: boolean;
  listener: SweepListener;
  stop: { requested: boolean };
  /** Prepared data sets (see prepareSweepData): prepared before the live view starts drawing. */
  data: SweepData;
  /** Trials trained at once (their steps interleave on the one GPU queue); default 1. */
  parallel?: number;
  /**
   * The sweep directory's lock, when the caller took it early (lockSweep); else runSweep takes it.
   * null: take none, only the trial locks (a Slurm array task, one of many on one sweep).
   */
  lock?: Lock | null;
  /** Write the sweep's report at the end (default true); a Slurm array task trains one trial and leaves it to the submitter. */
  report?: boolean;
  /** Write each trial's initial weights (initial.safetensors). */
  saveInit?: boolean;
  /** Profile each finished trial's training step, per dispatch (`moec run --profile`). */
  profile?: boolean;
  /** How a profile is taken (default profileDispatches); a test passes one that fails. */
  profiler?: (ex: PlanExecutor, program: string) => Promise<DispatchProfile>;
  /** Where notes for the user go (e.g. what --force removes). */
  log?: (msg: string) => void;
}

export interface SweepResult {
  /** With `profile`: each done trial's training step, per dispatch, or why it could not be profiled, in the order they finished. */
  profiles?: { id: string; name: string; profile?: TrialProfile; error?: string }[];
  done: number;
  failed: number;
  stopped: number;
  skipped: number;
  reportPath: string | null;
  /** Why the report could not be written (the trials' records are intact). */
  reportError?: string;
}

/** The sweep's directory name: the .moe file's base name, plus the preset when one is applied. */
export function sweepName(file: string, preset: string | null): string {
  const base = path.basename(file).replace(/\.moe$/, '');
  return preset ? `${base}-${preset}` : base;
}

/** Where a sweep's records go: OUT/<sweepName>. */
export function sweepDir(out: string, file: string, preset: string | null): string {
  return path.join(out, sweepName(file, preset));
}

/**
 * Runs every trial of a sweep in order on one GPU: a trial that fails is marked failed with its
 * error and the sweep goes on; finished trials are skipped on --resume; Ctrl-C stops after the
 * current step with a checkpoint. Writes the report at the end.
 */
export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const preset = o.load.pipeline?.preset ?? null;
  const name = sweepName(o.file, preset);
  const dir = path.join(o.out, name);
  const sweepLock = o.lock === null ? null : o.lock ?? lockSweep(dir);
  try {
    return await runLocked(o, name, dir);
  } finally {
    sweepLock?.release();
  }
}

async function runLocked(o: SweepOptions, name: string, dir: string): Promise<SweepResult> {
  const preset = o.load.pipeline?.preset ?? null;
  const adapter = o.gpu.describe();
  const comparisons = o.load.pipeline?.sweep?.comparisons ?? [];
  const zips = (o.load.pipeline?.sweep?.dimensions ?? []).filter((d) => d.kind === 'zip').map((d) => d.params.map((p) => p.path));
  const info = { sweep: name, file: path.resolve(o.file), preset, adapter, trials: o.trials.map((t) => ({ id: t.id, name: t.name })), comparisons, zips };
  const store = (o.resume || o.force) && RunStore.exists(dir) ? RunStore.open(dir) : RunStore.create(dir, info);
  if (o.resume || o.force) {
    store.syncTrials(info.trials, adapter);
    store.setAnalysis({ comparisons, zips });
  }
  tidySweep(store);
  if (o.force) forceTrials(store, o.trials, o.log ?? (() => {}));
  if (o.resume) checkResumable(store, o, dir);
  const result: SweepResult = { done: 0, failed: 0, stopped: 0, skipped: 0, reportPath: null, profiles: [] };
  o.listener({ type: 'sweep-start', sweep: name, adapter, out: dir, trials: o.trials.map(trialInfo) });
  const ctx: TrialRunContext = { gpu: o.gpu, store, data: o.data, listener: o.listener, adapter, stop: o.stop, saveInit: Boolean(o.saveInit), file: o.file,
    ...(o.profile ? { profile: {
      measure: o.profiler ?? profileDispatches,
      record: (t: Trial, p: TrialProfile | { error: string }) => result.profiles!.push({ id: t.id, name: t.name, ...('error' in p ? { error: p.error } : { profile: p }) }),
    } } : {}) };
  const runOne = async (t: Trial) => {
    let lock: Lock;
    try {
      lock = takeTrial(store, t.id);
    } catch (e) {
      if (!(e instanceof LockHeldError)) throw e;
      result.skipped++;
      o.listener({ type: 'trial-end', id: t.id, status: 'skipped', error: e.format(), wallSeconds: 0 });
      return;
    }
    try {
      await trainOne(t);
    } finally {
      lock.release();
    }
  };
  const trainOne = async (t: Trial) => {
    const ts = store.trial(t.id);
    const st = ts.readStatus();
    if (st?.state === 'done' && st.step >= t.config.train.steps) {
      result.skipped++;
      o.listener({ type: 'trial-end', id: t.id, status: 'skipped', wallSeconds: 0 });
      return;
    }
    const started = Date.now();
    try {
      const r = await trainOneTrial(ctx, t, o.compiled.get(t.id)!);
      if (r.status === 'done') result.done++;
      else result.stopped++;
      o.listener({ type: 'trial-end', id: t.id, status: r.status, wallSeconds: r.wallSeconds, tokensPerSec: r.tokensPerSec });
    } catch (e) {
      if (stopsTheSweep(e)) throw e;
      const message = e instanceof Error ? e.message : String(e);
      result.failed++;
      const wall = recordTrialFailure(ts, t, started, message, adapter);
      o.listener({ type: 'trial-end', id: t.id, status: 'failed', error: message, wallSeconds: wall });
    }
  };
  // A pool of workers over the trial list: each awaits only at its read-backs, which is when the
  // others enqueue their steps, so small models keep the GPU busy while the host waits.
  const queue = [...o.trials];
  const worker = async () => {
    for (let t = queue.shift(); t && !o.stop.requested; t = queue.shift()) await runOne(t);
  };
  await Promise.all(Array.from({ length: Math.max(1, o.parallel ?? 1) }, worker));
  // The trials' records are on disk whatever happens here: a failing report must not fail the run.
  try {
    if (o.report !== false) result.reportPath = (await writeReport(dir)).files.markdown;
  } catch (e) {
    result.reportError = `${(e as Error).message}; the runs are intact: retry with 'moec report ${dir}'`;
  }
  o.listener({ type: 'sweep-end', out: dir });
  return result;
}

/**
 * Whether a trial's failure stops the sweep: a mistake in the input (the file, a flag, the data)
 * that every trial would meet, the user's to fix. One trial's own state (UserError kind 'trial')
 * and anything that went wrong inside its training are recorded with that trial, and the sweep goes on.
 */
export function stopsTheSweep(e: unknown): boolean {
  return e instanceof UserError && e.kind === 'input';
}
