// The Slurm side of `moec status`: which array task holds each trial (from the submissions of the
// run) and what squeue says of it; a trial the store says is running whose task has left the queue
// without an end record was killed (lost).
import { squeueArrays, type QueuedTask } from './commands.js';
import { readSubmissions, readTrialList } from './trial-list.js';
import type { StatusSource, SweepStatus } from '../status/sweep-status.js';

/** Slurm states in which a task may still run (or run again). */
const LIVE = new Set(['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SUSPENDED', 'SIGNALING', 'STAGE_OUT', 'STOPPED']);

export function isLive(state: string): boolean {
  return LIVE.has(state);
}

/** Per trial id, its task in the newest submission that lists it. */
export function tasksByTrial(runDir: string): Map<string, { arrayJob: string; index: number }> {
  const out = new Map<string, { arrayJob: string; index: number }>();
  for (const sub of readSubmissions(runDir)) {
    const list = readTrialList(sub.list);
    list.trials.forEach((t, index) => out.set(t.id, { arrayJob: sub.array_job_id, index }));
  }
  return out;
}

export const squeueSource: StatusSource = {
  name: 'slurm',
  annotate(s: SweepStatus) {
    const byTrial = tasksByTrial(s.dir);
    if (!byTrial.size) return;
    const arrays = [...new Set([...byTrial.values()].map((x) => x.arrayJob))];
    const q = squeueArrays(arrays);
    if ('error' in q) {
      s.notes.push(`Slurm: ${q.error}; states are the run store's only`);
      return;
    }
    const live = new Map<string, QueuedTask>();
    for (const t of q.tasks) live.set(`${t.arrayJob}_${t.index}`, t);
    const pending = q.tasks.filter((t) => t.state === 'PENDING').length;
    const running = q.tasks.filter((t) => t.state === 'RUNNING').length;
    s.notes.push(`Slurm arrays ${arrays.join(', ')}: ${running} tasks running, ${pending} pending`);
    for (const t of s.trials) {
      const at = byTrial.get(t.id);
      if (!at) continue;
      const name = `${at.arrayJob}_${at.index}`;
      const task = live.get(name);
      if (t.state === 'done') continue;
      if (task && isLive(task.state)) {
        if (task.state === 'PENDING' || task.state === 'REQUEUED' || task.state === 'REQUEUE_HOLD') {
          t.state = 'queued';
          t.why = `Slurm task ${name} ${task.state.toLowerCase()}${task.reason && task.reason !== 'None' ? ` (${task.reason})` : ''}`;
        } else {
          t.state = 'running';
          if (!t.where || !t.where.includes(`job ${name}`)) t.where = `${task.nodes || '?'}, Slurm job ${name} (${task.jobId})${t.lastEnded || !t.lastStart ? ', starting' : ''}`;
          if (task.state !== 'RUNNING') t.notes.push(`Slurm: ${task.state}`);
        }
        continue;
      }
      if (task) t.notes.push(`Slurm task ${name} ended ${task.state}`);
      if (t.state === 'running' && !t.lastEnded) {
        t.state = 'lost';
        t.why = `its Slurm task ${name} is no longer queued and the trial never recorded an end (killed?); resubmit with 'moec run FILE --slurm --resume'`;
      } else if (t.state === 'pending') {
        t.why = `not trained: its Slurm task ${name} ${task ? `ended ${task.state}` : 'has left the queue'}; resubmit with 'moec run FILE --slurm --resume'`;
      }
    }
  },
};
