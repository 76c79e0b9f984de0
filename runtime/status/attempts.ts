// runs/<sweep>/<trial>/attempts.jsonl: every time a process (a Slurm array task, a queue worker)
// takes a trial, where it ran, and how that attempt ended. `moec status` reads it to say where a
// trial is running and how often it was retried; the training records stay in status.json.
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { JsonlLog, readJsonl } from '../store/jsonl.js';

export interface SlurmPlace {
  job_id: string;
  array_job_id: string;
  array_task_id: number;
  /** SLURM_RESTART_COUNT: how often Slurm has requeued this task before. */
  restarts: number;
}

export type AttemptRecord =
  | { event: 'start'; time: string; host: string; pid: number; by: string; slurm?: SlurmPlace }
  | { event: 'end'; time: string; host: string; pid: number; outcome: 'done' | 'stopped' | 'failed' | 'skipped'; step?: number; error?: string; signal?: string };

export function attemptsFile(trialDir: string): string {
  return path.join(trialDir, 'attempts.jsonl');
}

export function readAttempts(trialDir: string): AttemptRecord[] {
  return readJsonl<AttemptRecord>(attemptsFile(trialDir));
}

/** The attempt of this process on one trial: `start` on taking it, `end` once it is left. */
export class Attempt {
  private readonly log: JsonlLog<AttemptRecord>;
  constructor(trialDir: string, private readonly by: string) {
    mkdirSync(trialDir, { recursive: true });
    this.log = new JsonlLog(attemptsFile(trialDir));
  }

  start(slurm?: SlurmPlace): void {
    this.log.append({ event: 'start', time: new Date().toISOString(), host: hostname(), pid: process.pid, by: this.by, ...(slurm ? { slurm } : {}) });
  }

  end(outcome: 'done' | 'stopped' | 'failed' | 'skipped', extra: { step?: number; error?: string; signal?: string } = {}): void {
    this.log.append({ event: 'end', time: new Date().toISOString(), host: hostname(), pid: process.pid, outcome, ...extra });
  }
}

/** Where this process is, from Slurm's environment (undefined outside a batch job). */
export function slurmPlaceFromEnv(env: NodeJS.ProcessEnv = process.env): SlurmPlace | undefined {
  if (!env.SLURM_JOB_ID) return undefined;
  return {
    job_id: env.SLURM_JOB_ID,
    array_job_id: env.SLURM_ARRAY_JOB_ID ?? env.SLURM_JOB_ID,
    array_task_id: Number(env.SLURM_ARRAY_TASK_ID ?? 0),
    restarts: Number(env.SLURM_RESTART_COUNT ?? 0),
  };
}
