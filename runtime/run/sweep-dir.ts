// A sweep directory's locks and housekeeping: the sweep lock of moec run, the trial lock every
// trainer takes (takeTrial), --force, the --resume settings check, and tidying after a kill.
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Trial } from '../../compiler/frontend/index.js';
import { UserError } from '../../grammar/user-error.js';
import { trialConfigDiff } from '../store/config-diff.js';
import { acquireLock, LockHeldError, pidAlive, sweepLockPath, trialLockPath, type Lock } from '../store/lock.js';
import type { RunStore } from '../store/run-store.js';
import { lrAt } from '../train/schedule.js';
import type { SweepOptions } from './sweep.js';

/** Hold the whole sweep directory (moec run): a second run on it is refused, naming this one. */
export function lockSweep(dir: string): Lock {
  return acquireLock(sweepLockPath(dir), 'moec run (the whole sweep)', {
    hint: 'another moec run is writing this sweep: wait for it, stop it (Ctrl-C or kill PID), or pass another --out',
  });
}

/**
 * Take one trial for training: its lock, held until released. Every trainer takes its trials here
 * (the local run, queue workers, Slurm array tasks), so two processes never train one trial at once.
 * Throws LockHeldError while another live process holds it.
 */
export function takeTrial(store: RunStore, id: string): Lock {
  return acquireLock(trialLockPath(path.join(store.dir, id)), `train trial ${id}`, {
    hint: 'another process is training this trial; it is left to it',
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
export function forceTrials(store: RunStore, trials: Trial[], log: (msg: string) => void): void {
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
export function checkResumable(store: RunStore, o: SweepOptions, dir: string): void {
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
    // A stored config is complete; a key it lacks was added to moec since, and ran at its default.
    const diffs = trialConfigDiff(stored.config, t.config);
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
