import path from 'node:path';
import type { DataSet, LoadResult, Trial } from '../../compiler/frontend/index.js';
import type { CompiledTrial } from '../../compiler/lower/compile.js';
import { configDiff } from '../store/config-diff.js';
import { lrAt } from '../train/schedule.js';
import { UserError } from '../../grammar/user-error.js';
import type { Gpu } from '../gpu/device.js';
import { writeReport } from '../report/report.js';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { acquireLock, LockHeldError, pidAlive, sweepLockPath, type Lock } from '../store/lock.js';
import { RunStore } from '../store/run-store.js';
import type { SweepListener } from '../train/events.js';
import type { SweepData } from './sweep-data.js';
import { recordTrialFailure, takeTrial, trainOneTrial, trialInfo, type TrialRunContext } from './trial-runner.js';

export { prepareSweepData, SweepData } from './sweep-data.js';
export { takeTrial } from './trial-runner.js';

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
  /** The sweep directory's lock, when the caller took it early (lockSweep); else runSweep takes it. */
  lock?: Lock;
  /** Where notes for the user go (e.g. what --force removes). */
  log?: (msg: string) => void;
}

export interface SweepResult {
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

/** Hold the whole sweep directory (moec run): a second run on it is refused, naming this one. */
export function lockSweep(dir: string): Lock {
  return acquireLock(sweepLockPath(dir), 'moec run (the whole sweep)', {
    hint: 'another moec run is writing this sweep: wait for it, stop it (Ctrl-C or kill PID), or pass another --out',
  });
}

/** Temp files (.NAME.tmp-PID) of writers that died: their pid is gone, and they are old enough that no other host is mid-write. */
function removeDeadTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^\..+\.tmp-(\d+)$/.exec(n);
    if (!m || pidAlive(Number(m[1]))) continue;
    const file = path.join(dir, n);
    try {
      if (Date.now() - statSync(file).mtimeMs > 60_000) rmSync(file, { force: true });
    } catch {
      // gone already
    }
  }
}

/**
 * Under the sweep lock, before training: remove temp files of dead writers, and make index.json
 * agree with each trial's status.json (a kill between the two writes leaves them apart). A trial
 * recorded as running whose lock nobody holds was interrupted: it becomes 'stopped'.
 */
export function tidySweep(store: RunStore): void {
  removeDeadTemps(store.dir);
  for (const entry of store.index.trials) {
    const ts = store.trial(entry.id);
    removeDeadTemps(ts.dir);
    const st = ts.readStatus();
    if (st?.state === 'running' || (!st && entry.status === 'running')) {
      let lock: Lock;
      try {
        lock = takeTrial(store, entry.id);
      } catch (e) {
        if (e instanceof LockHeldError) continue; // really running, elsewhere
        throw e;
      }
      try {
        if (st) ts.writeStatus({ ...st, state: 'stopped', error: 'interrupted: the process training it ended without stopping it; --resume continues from its last checkpoint' });
        else store.setTrialStatus(entry.id, 'pending');
      } finally {
        lock.release();
      }
    } else if (st && entry.status !== st.state) store.setTrialStatus(entry.id, st.state);
  }
}

/**
 * --force: remove the records of exactly the trials about to run, saying which; the sweep's other
 * trials (those --only leaves out) keep theirs. Each is removed under its lock, so a trial another
 * process is training is refused, not deleted under it.
 */
function forceTrials(store: RunStore, trials: Trial[], log: (msg: string) => void): void {
  const removed: string[] = [];
  for (const t of trials) {
    const lock = takeTrial(store, t.id);
    try {
      if (store.resetTrial(t.id)) removed.push(t.name);
    } finally {
      lock.release();
    }
  }
  const kept = store.index.trials.length - trials.length;
  if (removed.length) log(`--force: removed the records of ${removed.length} trial${removed.length === 1 ? '' : 's'} to run again: ${removed.join('; ')}${kept > 0 ? ` (the other ${kept} keep theirs)` : ''}`);
}

/**
 * --resume with other settings than a trial was trained with. Only a longer run is continued, and
 * only when its learning rate over the steps already trained is the same as under the new total
 * (then continuing equals having asked for the longer run at the start); anything else is refused
 * before training starts, naming each key that differs and the commands to type.
 */
function checkResumable(store: RunStore, o: SweepOptions, dir: string): void {
  const log = o.log ?? (() => {});
  const refused: string[] = [];
  const cmd = (flags: string) => `moec run ${o.file}${o.load.pipeline?.preset ? ` --preset ${o.load.pipeline.preset}` : ''}${path.resolve(o.out) === path.resolve('runs') ? '' : ` --out ${o.out}`} ${flags}`;
  let olderSteps: number | undefined;
  const ids: string[] = [];
  for (const t of o.trials) {
    if (!store.index.trials.some((x) => x.id === t.id)) continue;
    const ts = store.trial(t.id);
    const stored = ts.readConfig();
    if (!stored || stored.id !== t.id) continue; // none yet, or from an older moec (writeConfig handles those)
    const diffs = configDiff(stored.config, t.config);
    if (!diffs.length) continue;
    const was = stored.config.train;
    const now = t.config.train;
    const stepsOnly = diffs.every((d) => /^train\.(steps|warmup) /.test(d));
    const trained = ts.readStatus()?.step ?? 0;
    const sameSchedule = stepsOnly && now.steps > was.steps && Array.from({ length: Math.min(trained, was.steps) }, (_, i) => i).every((i) => lrAt(i, was) === lrAt(i, now));
    if (sameSchedule) {
      ts.writeConfig({ ...stored, config: t.config }, { replace: true });
      log(`--resume: trial ${t.name} (${t.id}): ${diffs.join(', ')}: continuing from step ${trained} to ${now.steps} (the learning rate of the steps already trained is the same under ${now.steps} steps)`);
      continue;
    }
    if (stepsOnly) olderSteps = was.steps;
    ids.push(t.id);
    refused.push(`${t.name} (${t.id}): ${diffs.join(', ')}${stepsOnly ? (now.steps < trained ? ` (it has trained ${trained} steps already)` : ` (the learning-rate schedule of the ${trained} steps trained depends on the total, so continuing would not equal a ${now.steps}-step run)`) : ''}`);
  }
  if (!refused.length) return;
  const keep = olderSteps !== undefined ? `continue as they were run: ${cmd(`--resume --steps ${olderSteps}`)}` : 'continue with the settings they were run with (the .moe file and flags of that run)';
  throw new UserError(`--resume: ${refused.length} trial${refused.length === 1 ? ' was' : 's were'} run with other settings: ${refused.join('; ')}`, {
    where: dir,
    hint: `${keep}; or train ${refused.length === 1 ? 'it' : 'them'} again from scratch with the new settings: ${cmd(`--only ${ids.length === 1 ? ids[0] : "'PATTERN'"} --force${o.trials[0] && olderSteps !== undefined ? ` --steps ${o.trials[0].config.train.steps}` : ''}`)}`,
  });
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
  const sweepLock = o.lock ?? lockSweep(dir);
  try {
    return await runLocked(o, name, dir);
  } finally {
    sweepLock.release();
  }
}

async function runLocked(o: SweepOptions, name: string, dir: string): Promise<SweepResult> {
  const preset = o.load.pipeline?.preset ?? null;
  const adapter = o.gpu.describe();
  const comparisons = o.load.pipeline?.sweep?.comparisons ?? [];
  const info = { sweep: name, file: path.resolve(o.file), preset, adapter, trials: o.trials.map((t) => ({ id: t.id, name: t.name })), comparisons };
  const store = (o.resume || o.force) && RunStore.exists(dir) ? RunStore.open(dir) : RunStore.create(dir, info);
  if (o.resume || o.force) {
    store.syncTrials(info.trials, adapter);
    store.setComparisons(comparisons);
  }
  tidySweep(store);
  if (o.force) forceTrials(store, o.trials, o.log ?? (() => {}));
  if (o.resume) checkResumable(store, o, dir);
  const result: SweepResult = { done: 0, failed: 0, stopped: 0, skipped: 0, reportPath: null };
  o.listener({ type: 'sweep-start', sweep: name, adapter, out: dir, trials: o.trials.map(trialInfo) });
  const ctx: TrialRunContext = { gpu: o.gpu, store, data: o.data, listener: o.listener, adapter, stop: o.stop };
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
      o.listener({ type: 'trial-end', id: t.id, status: r.status, wallSeconds: r.wallSeconds });
    } catch (e) {
      // A data problem is the user's to fix; anything else is recorded with the trial and the sweep goes on.
      if (e instanceof UserError && !(e.message.startsWith('trial'))) throw e;
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
    result.reportPath = (await writeReport(dir)).files.markdown;
  } catch (e) {
    result.reportError = `${(e as Error).message}; the runs are intact: retry with 'moec report ${dir}'`;
  }
  o.listener({ type: 'sweep-end', out: dir });
  return result;
}
