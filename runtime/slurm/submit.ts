// `moec run FILE --slurm`: decide which trials still need a task, write their trial list and the
// sbatch script into the run directory, and submit it. Nothing is written or submitted before
// every check has passed; --dry-run writes nothing at all.
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Trial } from '../../compiler/frontend/index.js';
import { UserError } from '../../grammar/user-error.js';
import { sweepName } from '../run/sweep.js';
import { forceTrials, lockSweep } from '../run/sweep-dir.js';
import { writeFileAtomic } from '../store/atomic.js';
import { RunStore } from '../store/run-store.js';
import { requireSlurm, sbatch, squeueArrays } from './commands.js';
import { renderScript } from './script.js';
import { isLive, tasksByTrial } from './squeue-source.js';
import { nextSubmission, recordSubmission, slurmDir, writeTrialList, type TrialList } from './trial-list.js';

export interface SlurmSubmitOptions {
  file: string;
  trials: Trial[];
  preset: string | null;
  steps: number | null;
  out: string;
  resume: boolean;
  force: boolean;
  portable: boolean;
  adapter: string | null;
  partition?: string;
  time?: string;
  maxParallel?: number;
  dryRun: boolean;
}

export interface SlurmSubmission {
  runDir: string;
  /** The trials of this sweep that the follower waits for (all given, less none). */
  trials: Trial[];
  /** Trials already done (skipped), and those a live task of an earlier submission holds. */
  done: string[];
  held: string[];
  /** The submitted array, or null when nothing needed a task (or on --dry-run). */
  arrayJobId: string | null;
  script: string | null;
  scriptPath: string | null;
}

/** Seconds of a Slurm time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
export function parseTimeLimit(s: string): number {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(s);
  if (!m) throw new UserError(`--time '${s}' is not a Slurm time limit`, { where: '--time', hint: 'write HH:MM:SS (e.g. 04:00:00) or D-HH:MM:SS' });
  const [d, a, b, c] = [m[1], m[2], m[3], m[4]].map((x) => (x === undefined ? undefined : Number(x)));
  let sec: number;
  if (d !== undefined) sec = d * 86400 + a! * 3600 + (b ?? 0) * 60 + (c ?? 0);
  else if (c !== undefined) sec = a! * 3600 + b! * 60 + c;
  else sec = a! * 60 + (b ?? 0);
  if (sec <= 0) throw new UserError(`--time '${s}' is no time at all`, { where: '--time' });
  return sec;
}

/** The moec a task runs: this node and this CLI, by absolute path (so the install must be shared). */
function moecCommand(): string[] {
  return [process.execPath, fileURLToPath(new URL('../cli/moec.js', import.meta.url))];
}

export function submitSlurm(o: SlurmSubmitOptions): SlurmSubmission {
  const runDir = path.resolve(o.out, sweepName(o.file, o.preset));
  if (o.partition !== undefined && !/^[A-Za-z0-9_.,-]+$/.test(o.partition)) throw new UserError(`--partition '${o.partition}' is not a partition name`, { where: '--partition', hint: 'sinfo lists the partitions' });
  const timeSec = o.time === undefined ? undefined : parseTimeLimit(o.time);
  if (o.dryRun) return submitLocked(o, runDir, timeSec);
  requireSlurm('sbatch');
  // One submitter at a time: two would both find a trial without a task and submit it twice.
  const lock = lockSweep(runDir);
  try {
    return submitLocked(o, runDir, timeSec);
  } finally {
    lock.release();
  }
}

function submitLocked(o: SlurmSubmitOptions, runDir: string, timeSec: number | undefined): SlurmSubmission {
  const exists = RunStore.exists(runDir);
  if (exists && !o.resume && !o.force) throw new UserError('a run already exists here', { where: runDir, hint: 'pass --resume to submit its unfinished trials (and follow the tasks already queued), or --force to delete it and start again' });
  const resuming = exists && o.resume;
  // Trials finished already, and those a queued or running task of an earlier submission will train.
  const done: string[] = [];
  const held: string[] = [];
  if (resuming) {
    const store = RunStore.open(runDir);
    const known = new Set(store.index.trials.map((t) => t.id));
    const byTrial = tasksByTrial(runDir);
    const arrays = [...new Set([...byTrial.values()].map((x) => x.arrayJob))];
    const q = arrays.length ? squeueArrays(arrays) : { tasks: [] };
    if ('error' in q && arrays.length) throw new UserError(`cannot tell which trials are still queued: ${q.error}`, { where: '--slurm', hint: 'run this where squeue works (the login node), or cancel the earlier arrays and pass --force' });
    const live = new Set(('tasks' in q ? q.tasks : []).filter((t) => isLive(t.state)).map((t) => `${t.arrayJob}_${t.index}`));
    for (const t of o.trials) {
      if (known.has(t.id) && store.trial(t.id).readStatus()?.state === 'done') done.push(t.id);
      else {
        const at = byTrial.get(t.id);
        if (at && live.has(`${at.arrayJob}_${at.index}`)) held.push(t.id);
      }
    }
  }
  const todo = o.trials.filter((t) => !done.includes(t.id) && !held.includes(t.id));
  const base: SlurmSubmission = { runDir, trials: o.trials, done, held, arrayJobId: null, script: null, scriptPath: null };
  if (!todo.length) return base;

  const n = resuming ? nextSubmission(runDir) : 1;
  const dir = slurmDir(runDir);
  const listPath = path.join(dir, `array-${n}.json`);
  const scriptPath = path.join(dir, `array-${n}.sbatch`);
  const script = renderScript({
    jobName: `moec-${path.basename(runDir)}`, tasks: todo.length,
    ...(o.maxParallel ? { maxParallel: o.maxParallel } : {}),
    ...(o.partition ? { partition: o.partition } : {}),
    ...(o.time ? { time: o.time } : {}),
    // Time enough to finish a step and write the checkpoint, but not most of a short limit.
    signalSeconds: timeSec === undefined ? 120 : Math.max(1, Math.min(120, Math.floor(timeSec / 4))),
    logDir: path.join(dir, 'logs'), workdir: process.cwd(), moec: moecCommand(), list: listPath,
  });
  if (o.dryRun) return { ...base, script, scriptPath };
  const adapterNote = '(set by the Slurm array tasks)';
  const info = { sweep: path.basename(runDir), file: path.resolve(o.file), preset: o.preset, adapter: adapterNote, trials: o.trials.map((t) => ({ id: t.id, name: t.name })) };
  // --force on an existing run removes the records of exactly the trials submitted, as a local run does.
  const store = resuming || exists ? RunStore.open(runDir) : RunStore.create(runDir, info);
  if (resuming || exists) store.syncTrials(info.trials);
  if (exists && !resuming) forceTrials(store, todo, (msg) => process.stderr.write(`${msg}\n`));
  const list: TrialList = {
    version: 1, file: path.resolve(o.file), preset: o.preset, steps: o.steps, portable: o.portable, adapter: o.adapter,
    runDir, out: path.resolve(o.out), created: new Date().toISOString(), trials: todo.map((t) => ({ id: t.id, name: t.name })),
  };
  writeTrialList(listPath, list);
  writeFileAtomic(scriptPath, script);
  chmodSync(scriptPath, 0o755);
  // Slurm opens the --output file itself, in a directory that must exist.
  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const arrayJobId = sbatch(scriptPath);
  recordSubmission(runDir, { n, array_job_id: arrayJobId, list: listPath, script: scriptPath, tasks: todo.length, submitted: new Date().toISOString() });
  return { ...base, arrayJobId, script, scriptPath };
}
