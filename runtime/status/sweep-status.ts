// What `moec status runs/SWEEP` says about each trial. The run store gives the base (status.json,
// attempts.jsonl, metrics); sources add what only the scheduler knows (squeue for Slurm; a queue's
// job states can be another source) and may refine a trial's state, e.g. queued or lost.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { RunStore } from '../store/run-store.js';
import { readAttempts, type AttemptRecord } from './attempts.js';

export type ShownState = 'done' | 'running' | 'queued' | 'pending' | 'stopped' | 'failed' | 'lost';

export interface TrialStatusView {
  id: string;
  name: string;
  state: ShownState;
  step: number;
  steps: number;
  /** Where it runs or ran last: host, pid, Slurm job. */
  where?: string;
  /** Why it failed, or what a source knows (pending reason, ...). */
  why?: string;
  /** Processes that took the trial (attempts.jsonl 'start' records). */
  attempts: number;
  /** Times Slurm requeued the task (SLURM_RESTART_COUNT of the latest attempt), or a queue's retries. */
  requeued: number;
  /** A line per source that had something to add. */
  notes: string[];
  /** The trial's latest attempt start, for sources that match by host/pid/job. */
  lastStart?: Extract<AttemptRecord, { event: 'start' }>;
  /** True when the latest attempt wrote its end record. */
  lastEnded: boolean;
}

export interface SweepStatus {
  dir: string;
  sweep: string;
  trials: TrialStatusView[];
  /** Lines about the whole sweep (e.g. "squeue: 2 tasks pending"). */
  notes: string[];
}

/** Adds what one scheduler knows. It may change a trial's state, `where` and `why`. */
export interface StatusSource {
  name: string;
  annotate(status: SweepStatus): void | Promise<void>;
}

function describeStart(s: Extract<AttemptRecord, { event: 'start' }>): string {
  const slurm = s.slurm ? `, Slurm job ${s.slurm.array_job_id}_${s.slurm.array_task_id} (${s.slurm.job_id})` : '';
  return `${s.host} pid ${s.pid}${slurm}`;
}

/** The run store's view of every trial in `dir`. */
export function storeStatus(dir: string): SweepStatus {
  const store = RunStore.open(dir);
  const trials: TrialStatusView[] = store.index.trials.map((t) => {
    const ts = store.trial(t.id);
    const st = existsSync(ts.dir) ? ts.readStatus() : null;
    const attempts = existsSync(ts.dir) ? readAttempts(ts.dir) : [];
    const starts = attempts.filter((a): a is Extract<AttemptRecord, { event: 'start' }> => a.event === 'start');
    const lastStart = starts.at(-1);
    const lastIdx = lastStart ? attempts.lastIndexOf(lastStart) : -1;
    const lastEnd = attempts.slice(lastIdx + 1).find((a) => a.event === 'end');
    const steps = st?.steps ?? (ts.readConfig()?.config.train.steps ?? 0);
    const view: TrialStatusView = {
      id: t.id, name: t.name, state: st ? st.state : 'pending', step: st?.step ?? 0, steps,
      attempts: starts.length, requeued: lastStart?.slurm?.restarts ?? 0, notes: [], lastEnded: Boolean(lastEnd),
      ...(lastStart ? { lastStart, where: describeStart(lastStart) } : {}),
    };
    // The step of a running trial: its newest metric is fresher than status.json (written at evaluations).
    if (st?.state === 'running') {
      const last = ts.readMetrics().at(-1);
      if (last && last.step > view.step) view.step = last.step;
    }
    if (st?.state === 'failed' && st.error) view.why = st.error;
    if (lastEnd && lastEnd.event === 'end' && lastEnd.signal && st?.state === 'stopped') view.why = `stopped by ${lastEnd.signal} at step ${lastEnd.step ?? st.step}`;
    return view;
  });
  return { dir, sweep: store.index.sweep, trials, notes: [] };
}

export async function sweepStatus(dir: string, sources: StatusSource[]): Promise<SweepStatus> {
  const s = storeStatus(dir);
  for (const src of sources) await src.annotate(s);
  return s;
}

const ORDER: ShownState[] = ['running', 'queued', 'pending', 'stopped', 'lost', 'failed', 'done'];

/** The status as text: a count per state, then a line per trial. */
export function formatStatus(s: SweepStatus): string {
  const counts = ORDER.map((k) => [k, s.trials.filter((t) => t.state === k).length] as const).filter(([, n]) => n > 0);
  const lines = [`${s.sweep} (${path.resolve(s.dir)}): ${s.trials.length} trials: ${counts.map(([k, n]) => `${n} ${k}`).join(', ')}`];
  const width = Math.max(...s.trials.map((t) => t.id.length), 5);
  for (const t of [...s.trials].sort((a, b) => ORDER.indexOf(a.state) - ORDER.indexOf(b.state))) {
    const parts = [`${t.id.padEnd(width)}  ${t.state.padEnd(7)}  ${`${t.step}/${t.steps || '?'}`.padStart(9)}  ${t.name}`];
    const extra: string[] = [];
    if (t.where && (t.state === 'running' || t.state === 'lost' || t.state === 'stopped' || t.state === 'failed')) extra.push(`${t.state === 'running' ? 'on' : 'last on'} ${t.where}`);
    if (t.attempts > 1 || t.requeued > 0) extra.push(`${t.attempts} attempts${t.requeued ? `, requeued ${t.requeued}×` : ''}`);
    if (t.why) extra.push(t.why);
    extra.push(...t.notes);
    lines.push(parts[0]! + (extra.length ? `\n${' '.repeat(width + 2)}${extra.join('; ')}` : ''));
  }
  lines.push(...s.notes);
  return lines.join('\n');
}
