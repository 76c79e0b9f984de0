// Following a sweep whose trials train elsewhere (Slurm array tasks on a shared filesystem): the
// run store is polled, and its new records become the same events a local run emits, so the live
// view and the log view show it as they show a local sweep. squeue tells when no task is left.
import { existsSync } from 'node:fs';
import type { Trial } from '../../compiler/frontend/index.js';
import { trialInfo } from '../run/trial-runner.js';
import { readAttempts } from '../status/attempts.js';
import { RunStore, type Metric } from '../store/run-store.js';
import type { SweepListener } from '../train/events.js';
import { squeueArrays } from './commands.js';
import { isLive, tasksByTrial } from './squeue-source.js';

export interface FollowOptions {
  runDir: string;
  trials: Trial[];
  adapter: string;
  listener: SweepListener;
  /** Set (e.g. by Ctrl-C) to stop following; the tasks go on. */
  stop: { requested: boolean };
  pollMs?: number;
  /** Trials done before this submission: shown as skipped, not replayed. */
  alreadyDone?: string[];
  /** A line for the user (squeue trouble, a trial without a task). */
  message: (text: string) => void;
}

export interface FollowResult {
  done: string[];
  failed: string[];
  /** Trials not finished when following ended (no task left for them, or the user detached). */
  unfinished: string[];
  detached: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function followSlurm(o: FollowOptions): Promise<FollowResult> {
  const store = RunStore.open(o.runDir);
  o.listener({ type: 'sweep-start', sweep: store.index.sweep, adapter: o.adapter, out: o.runDir, trials: o.trials.map(trialInfo) });
  // Per trial: attempts seen, metric records shown, and whether its end was shown.
  const seen = new Map<string, { started: number; shown: number; ended: boolean }>();
  for (const t of o.trials) seen.set(t.id, { started: 0, shown: 0, ended: false });
  for (const id of o.alreadyDone ?? []) {
    seen.get(id)!.ended = true;
    o.listener({ type: 'trial-end', id, status: 'skipped', wallSeconds: 0 });
  }
  let squeueWarned = false;
  let noTaskPolls = 0;
  for (;;) {
    for (const t of o.trials) {
      const s = seen.get(t.id)!;
      if (s.ended) continue;
      const ts = store.trial(t.id);
      if (!existsSync(ts.dir)) continue;
      const status = ts.readStatus();
      const starts = readAttempts(ts.dir).filter((a) => a.event === 'start').length;
      const metrics: Metric[] = ts.readMetrics();
      if (starts > s.started) {
        // A requeued task resumes from its checkpoint and cuts the records after it; those it
        // writes again repeat the same steps with the same values (moec's resume is exact).
        o.listener({ type: 'trial-start', id: t.id, ...(metrics.length ? { resumedFrom: metrics.at(-1)!.step } : {}) });
        s.started = starts;
      }
      s.shown = Math.min(s.shown, metrics.length);
      for (const m of metrics.slice(s.shown)) {
        if (m.kind === 'train') o.listener({ type: 'step', id: t.id, step: m.step, loss: m.loss, lr: m.lr, tokensPerSec: m.tokens_per_s, elapsed: m.time_s });
        else {
          const acc = (m as { valid_acc?: number }).valid_acc;
          o.listener({ type: 'eval', id: t.id, step: m.step, validLoss: m.valid_loss, validPpl: m.valid_ppl, ...(typeof acc === 'number' ? { validAcc: acc } : {}) });
        }
      }
      s.shown = metrics.length;
      if (status && (status.state === 'done' || status.state === 'failed')) {
        s.ended = true;
        o.listener({ type: 'trial-end', id: t.id, status: status.state === 'done' && starts === 0 ? 'skipped' : status.state, ...(status.error ? { error: status.error } : {}), wallSeconds: status.wall_s });
      }
    }
    const open = o.trials.filter((t) => !seen.get(t.id)!.ended);
    if (!open.length || o.stop.requested) break;
    // No live task holds any open trial (cancelled, or failed before writing): stop waiting.
    const byTrial = tasksByTrial(o.runDir);
    const arrays = [...new Set([...byTrial.values()].map((x) => x.arrayJob))];
    const q = squeueArrays(arrays);
    if ('error' in q) {
      if (!squeueWarned) o.message(`${q.error}: following the run store only (Ctrl-C detaches; the tasks go on)`);
      squeueWarned = true;
    } else {
      const live = new Set(q.tasks.filter((x) => isLive(x.state)).map((x) => `${x.arrayJob}_${x.index}`));
      const held = open.filter((t) => {
        const at = byTrial.get(t.id);
        return at && live.has(`${at.arrayJob}_${at.index}`);
      });
      // A task writes its last records just before leaving the queue: look once more before giving up.
      noTaskPolls = held.length ? 0 : noTaskPolls + 1;
      if (noTaskPolls >= 3) break;
    }
    await sleep(o.pollMs ?? 2000);
  }
  const result: FollowResult = { done: [], failed: [], unfinished: [], detached: o.stop.requested };
  for (const t of o.trials) {
    const st = store.trial(t.id).readStatus()?.state;
    (st === 'done' ? result.done : st === 'failed' ? result.failed : result.unfinished).push(t.id);
  }
  o.listener({ type: 'sweep-end', out: o.runDir });
  return result;
}
