// Slurm's own client commands (sbatch, squeue, scontrol), run as the user would run them: they find
// the cluster through the usual slurm.conf lookup (SLURM_CONF or /etc/slurm).
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../grammar/user-error.js';

/** The absolute path of a Slurm command on PATH, or null. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Refuses, with what to do, when `name` is not on PATH. */
export function requireSlurm(name: string, flag = '--slurm'): string {
  const p = findOnPath(name);
  if (!p) {
    throw new UserError(`'${name}' is not on PATH, so the sweep cannot be submitted to Slurm`, {
      where: flag,
      hint: `run this on a Slurm login node (or load its module, e.g. 'module load slurm'); 'moec run FILE --slurm --dry-run' prints the job script without submitting it`,
    });
  }
  return p;
}

function run(bin: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  if (r.error) return { status: null, stdout: '', stderr: r.error.message };
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Submits a batch script; returns the job id (the array's job id). */
export function sbatch(script: string): string {
  const bin = requireSlurm('sbatch');
  const r = run(bin, ['--parsable', script]);
  if (r.status !== 0) throw new UserError(`sbatch refused the job array: ${r.stderr.trim() || `exit ${r.status}`}`, { where: script, hint: 'check --partition and --time against the cluster (sinfo lists partitions); the script is kept there to edit and submit by hand' });
  // --parsable prints "jobid" or "jobid;cluster".
  const id = r.stdout.trim().split(';')[0]!;
  if (!/^\d+$/.test(id)) throw new Error(`sbatch printed no job id: ${JSON.stringify(r.stdout)}`);
  return id;
}

/** One array task as squeue shows it. */
export interface QueuedTask {
  /** The array's job id (%F) and the task index (%K). */
  arrayJob: string;
  index: number;
  /** The task's own job id (%A). */
  jobId: string;
  /** PENDING, RUNNING, COMPLETING, REQUEUED, ... */
  state: string;
  /** Why it is pending (or None). */
  reason: string;
  /** Where it runs (empty while pending). */
  nodes: string;
}

/**
 * The live tasks of the given arrays (finished tasks leave squeue), or null when squeue cannot be
 * asked (not on PATH, or the controller does not answer): callers then rely on the run store alone.
 */
export function squeueArrays(arrayJobs: string[]): { tasks: QueuedTask[] } | { error: string } {
  const bin = findOnPath('squeue');
  if (!bin) return { error: "squeue is not on PATH" };
  if (!arrayJobs.length) return { tasks: [] };
  // --me and a filter here rather than -j: -j fails outright once one of the ids has left the queue.
  const r = run(bin, ['--me', '--array', '--noheader', '--states=all', '--format=%F|%K|%A|%T|%r|%N']);
  if (r.status !== 0) return { error: `squeue failed: ${r.stderr.trim() || `exit ${r.status}`}` };
  const want = new Set(arrayJobs);
  const tasks: QueuedTask[] = [];
  for (const line of r.stdout.split('\n')) {
    const [arrayJob, idx, jobId, state, reason, nodes] = line.trim().split('|');
    if (!arrayJob || !want.has(arrayJob) || idx === undefined) continue;
    // A pending array not yet split prints its index range ("1-3%1"): one entry per index.
    for (const i of expandIndices(idx)) tasks.push({ arrayJob, index: i, jobId: jobId ?? '', state: state ?? '', reason: reason ?? '', nodes: nodes ?? '' });
  }
  return { tasks };
}

/** "3" -> [3]; "1-3%1" -> [1,2,3]; "0,2,5-6" -> [0,2,5,6]. */
export function expandIndices(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.replace(/%\d+$/, '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    for (let i = a; i <= b; i += step) out.push(i);
  }
  return out;
}
