// The trial list of one Slurm submission: written beside the run at submission, read by every array
// task, so task i trains trials[i] with the settings the sweep was submitted with (preset, steps).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Trial } from '../../compiler/frontend/index.js';
import { UserError } from '../../grammar/user-error.js';
import { writeJsonAtomic } from '../store/atomic.js';
import { JsonlLog, readJsonl } from '../store/jsonl.js';
import { readJsonFile } from '../store/run-store.js';

export interface TrialList {
  version: 1;
  /** The .moe file, absolute: it must be readable at this path on every compute node. */
  file: string;
  preset: string | null;
  /** --steps of the submission (null: the file's train.steps). */
  steps: number | null;
  portable: boolean;
  adapter: string | null;
  /** The run directory (absolute) and the --out it lies in. */
  runDir: string;
  out: string;
  created: string;
  /** Array task i trains trials[i]. */
  trials: { id: string; name: string }[];
}

/** Where a run's Slurm files go: trial lists, sbatch scripts, the submissions log, task logs. */
export function slurmDir(runDir: string): string {
  return path.join(runDir, 'slurm');
}

/** The next free submission number n (files slurm/array-n.*). */
export function nextSubmission(runDir: string): number {
  const d = slurmDir(runDir);
  if (!existsSync(d)) return 1;
  const used = readdirSync(d).map((f) => /^array-(\d+)\.json$/.exec(f)?.[1]).filter((x): x is string => x !== undefined).map(Number);
  return used.length ? Math.max(...used) + 1 : 1;
}

export function writeTrialList(file: string, list: TrialList): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeJsonAtomic(file, list);
}

export function readTrialList(file: string): TrialList {
  const list = readJsonFile<TrialList>(file);
  if (list.version !== 1 || !Array.isArray(list.trials) || typeof list.file !== 'string') {
    throw new UserError('not a moec Slurm trial list', { where: file, hint: "trial lists are written by 'moec run FILE --slurm' under runs/<sweep>/slurm/" });
  }
  return list;
}

/** Applies --steps as `moec run` does: every trial trains n steps, its warmup cut to fit. */
export function overrideSteps(trials: Trial[], n: number): void {
  for (const t of trials) {
    t.config.train.steps = n;
    t.config.train.warmup = Math.min(t.config.train.warmup, Math.max(0, n - 1));
  }
}

/** slurm/submissions.jsonl: one line per submitted array. */
export interface SubmissionRecord {
  n: number;
  array_job_id: string;
  list: string;
  script: string;
  tasks: number;
  submitted: string;
}

export function submissionsFile(runDir: string): string {
  return path.join(slurmDir(runDir), 'submissions.jsonl');
}

export function readSubmissions(runDir: string): SubmissionRecord[] {
  return readJsonl<SubmissionRecord>(submissionsFile(runDir));
}

export function recordSubmission(runDir: string, r: SubmissionRecord): void {
  new JsonlLog<SubmissionRecord>(submissionsFile(runDir)).append(r);
}
