// What a sweep looks like right now, folded from its event stream. Both views read this model;
// it is mutated in place (step events can be fast) and tells subscribers that it changed.
import type { LayerLoad, SweepEvent, TrialInfo, TrialStatus } from '../train/events.js';
import { collapseWarning, DEFAULT_COLLAPSE_SHARE } from './collapse.js';
import { perplexity } from './format.js';

/** Loss points kept per trial for the sparkline; older points are thinned, not dropped. */
const LOSS_HISTORY = 240;

export interface TrialState {
  info: TrialInfo;
  /** 1-based position in the sweep, for `[3/12]` prefixes. */
  index: number;
  status: TrialStatus;
  /** Last step reported (or the resume point before the first step). */
  step: number;
  /** The step this process started from: 0, or the checkpoint it resumed from. */
  firstStep: number;
  loss?: number;
  tokensPerSec?: number;
  /** Seconds since this process started the trial, from the last step event. */
  elapsed: number;
  /** Model clock (ms) at this process's trial-start. */
  startedAt?: number;
  /** This process's seconds on a finished trial, trial-start to trial-end: evaluations and the last checkpoint included. */
  segmentSeconds?: number;
  validLoss?: number;
  validPpl?: number;
  /** Test accuracy, for a classification task (the cluster task) instead of a perplexity. */
  validAcc?: number;
  evalStep?: number;
  expertLoad?: number[][];
  /** Training loss history, thinned by halving whenever it reaches LOSS_HISTORY points. */
  losses: number[];
  /** Every `stride`-th step goes into `losses`; doubles on each thinning. */
  stride: number;
  error?: string;
  wallSeconds?: number;
  /** Kernel compilation before the first step: kernels done of total, and for how long. */
  compile?: { done: number; total: number; shared: number; seconds: number; /** Model clock (ms) when compilation began. */ startedAt: number };
  /** 'compiling' until the trial's first training event. */
  phase?: 'compiling' | 'training';
  /** Per MoE layer at the last logged step: balance loss, z loss, dropped fraction. */
  moe?: { balance: number[]; z: number[]; dropped: number[] };
  /** Per routing layer, over the last logging window: overload factor, dead experts, busiest share. */
  load?: LayerLoad[];
  /** Set while the last window shows a collapsed layer (collapse.ts). */
  collapse?: string;
}

export interface SweepHeader {
  sweep: string;
  adapter: string;
  out: string;
}

/** A line for the static area above the live region: a finished trial, or a message from the runner. */
export type StaticItem = { key: string; trial: TrialState } | { key: string; message: string };

export class SweepModel {
  header: SweepHeader | undefined;
  readonly trials: TrialState[] = [];
  /** Finished trials (any end status) in the order they ended; append-only, for `<Static>`. */
  readonly finished: TrialState[] = [];
  /** Finished trials and messages in the order they happened; append-only, for `<Static>`. */
  readonly printed: StaticItem[] = [];
  /** Clock reading (ms) when the sweep started and ended, from the injected clock. */
  startedAt: number | undefined;
  endedAt: number | undefined;
  private readonly byId = new Map<string, TrialState>();
  private readonly listeners = new Set<() => void>();
  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** An expert above this share of a layer's tokens counts as a collapse (`moec run --collapse-share`). */
  collapseShare = DEFAULT_COLLAPSE_SHARE;

  constructor(private readonly now: () => number = Date.now) {}

  apply(e: SweepEvent): void {
    switch (e.type) {
      case 'sweep-start':
        this.header = { sweep: e.sweep, adapter: e.adapter, out: e.out };
        this.startedAt = this.now();
        this.trials.length = 0;
        this.finished.length = 0;
        this.printed.length = 0;
        this.byId.clear();
        e.trials.forEach((info, i) => {
          const t: TrialState = { info, index: i + 1, status: 'pending', step: 0, firstStep: 0, elapsed: 0, losses: [], stride: 1 };
          this.trials.push(t);
          this.byId.set(info.id, t);
        });
        break;
      case 'compile': {
        const t = this.get(e.id);
        t.status = 'running';
        t.phase = 'compiling';
        // The clock runs on between kernels (one can take a minute on a software adapter).
        t.compile = { done: e.done, total: e.total, shared: e.shared, seconds: e.seconds, startedAt: t.compile?.startedAt ?? this.now() - 1000 * e.seconds };
        break;
      }
      case 'trial-start': {
        const t = this.get(e.id);
        t.status = 'running';
        t.phase = 'training';
        t.firstStep = e.resumedFrom ?? 0;
        t.step = t.firstStep;
        t.elapsed = 0;
        t.startedAt = this.now();
        if (e.note) this.printed.push({ key: `message:${this.printed.length}`, message: `${t.info.name}: ${e.note}` });
        break;
      }
      case 'step': {
        const t = this.get(e.id);
        t.step = e.step;
        t.loss = e.loss;
        t.tokensPerSec = e.tokensPerSec;
        t.elapsed = e.elapsed;
        if (e.moe) t.moe = e.moe;
        if (e.load) {
          t.load = e.load;
          const w = collapseWarning(e.load, this.collapseShare);
          if (w) t.collapse = w;
          else delete t.collapse;
        }
        if (e.step % t.stride === 0) {
          t.losses.push(e.loss);
          if (t.losses.length >= LOSS_HISTORY) {
            t.losses = t.losses.filter((_, i) => i % 2 === 1);
            t.stride *= 2;
          }
        }
        break;
      }
      case 'eval': {
        const t = this.get(e.id);
        t.validLoss = e.validLoss;
        t.validPpl = e.validPpl;
        if (e.validAcc !== undefined) t.validAcc = e.validAcc;
        t.evalStep = e.step;
        if (e.expertLoad) t.expertLoad = e.expertLoad;
        break;
      }
      case 'checkpoint':
        break;
      case 'trial-end': {
        const t = this.get(e.id);
        t.status = e.status;
        t.wallSeconds = e.wallSeconds;
        if (t.startedAt !== undefined) t.segmentSeconds = (this.now() - t.startedAt) / 1000;
        if (e.tokensPerSec !== undefined && e.tokensPerSec > 0) t.tokensPerSec = e.tokensPerSec;
        if (e.error !== undefined) t.error = e.error;
        this.finished.push(t);
        this.printed.push({ key: `trial:${t.info.id}:${this.printed.length}`, trial: t });
        break;
      }
      case 'sweep-end':
        this.endedAt = this.now();
        break;
    }
    this.changed();
  }

  /** A message from the runner (a warning, "stopping after the checkpoint") for the static area. */
  message(text: string): void {
    this.printed.push({ key: `message:${this.printed.length}`, message: text });
    this.changed();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Seconds since sweep-start (frozen at sweep-end). */
  elapsedSeconds(): number {
    if (this.startedAt === undefined) return 0;
    return ((this.endedAt ?? this.now()) - this.startedAt) / 1000;
  }

  counts(): Record<TrialStatus, number> {
    const c: Record<TrialStatus, number> = { pending: 0, running: 0, done: 0, failed: 0, skipped: 0, stopped: 0 };
    for (const t of this.trials) c[t.status]++;
    return c;
  }

  /**
   * Seconds left in the whole sweep: the steps every unfinished trial has still to run, at the
   * mean seconds per step observed so far over the trials that have trained (compilation and the
   * steps a resume skipped are not counted). A finished trial counts to its end, so the rate
   * carries the evaluations and the final checkpoint a later trial will also spend time on (the
   * last step event alone left out the final evaluation: half of a short trial's time). Undefined
   * until a step has been timed.
   */
  sweepEtaSeconds(): number | undefined {
    let seconds = 0;
    let steps = 0;
    let pendingSteps = 0;
    let running = 0;
    for (const t of this.trials) {
      const ran = t.step - t.firstStep;
      // elapsed: this process's time on the trial, as of its last step (its own segment only).
      const timed = ran > 0 && t.elapsed > 0 && t.status !== 'skipped';
      if (timed) {
        seconds += t.segmentSeconds ?? t.elapsed;
        steps += ran;
      }
      const left = Math.max(0, t.info.steps - t.step);
      // A running trial at its own rate (as its row's ETA), the others at the sweep's mean rate.
      if (t.status === 'running' && timed) running += (left * t.elapsed) / ran;
      else if (t.status === 'running' || t.status === 'pending') pendingSteps += left;
    }
    if (steps === 0) return undefined;
    return running + (pendingSteps * seconds) / steps;
  }

  /** Seconds the trial has been compiling its kernels, now (frozen once training starts). */
  compileSeconds(t: TrialState): number | undefined {
    if (!t.compile) return undefined;
    return t.phase === 'compiling' && this.endedAt === undefined ? (this.now() - t.compile.startedAt) / 1000 : t.compile.seconds;
  }

  get(id: string): TrialState {
    const t = this.byId.get(id);
    // An event for a trial the sweep never announced is a runner bug, not a user mistake.
    if (!t) throw new Error(`sweep event for unknown trial '${id}' (no sweep-start listed it)`);
    return t;
  }
}

/** The training perplexity shown next to the loss. */
export function trainPpl(t: TrialState): number | undefined {
  return t.loss === undefined ? undefined : perplexity(t.loss);
}
