// Batches of token windows for training and evaluation. A window is T+1 consecutive tokens of one
// label group (documents sharing every label of the data set, see PreparedSplit), so it never spans
// documents with different labels; its label ids travel with it. Inputs are the first T tokens and
// targets the next T; where a group is shorter than T+1 the window is padded (input EOT, target
// IGNORE, which the loss skips).
import { Rng } from './rng.js';
import type { LabelSpace, PreparedSplit, PreparedText } from './types.js';

/** Target value the cross-entropy kernel skips. */
export const IGNORE = 0xffffffff;

export interface TextBatch {
  /** B * T input tokens, window-major. */
  inputs: Uint32Array;
  /** B * T next-token targets (IGNORE for padding). */
  targets: Uint32Array;
  /** Label name -> the label id of each of the B windows (an index into LabelSpace.values). */
  labels: Record<string, Uint32Array>;
  /** Windows that hold data: B, except in the last batch of a sequential pass. */
  windows: number;
  /** Targets that are not IGNORE (the tokens the loss averages over). */
  targetCount: number;
}

export interface BatcherOptions {
  /** Context length T. */
  context: number;
  /** Windows per batch B. */
  batch: number;
  seed: number;
  /** Balanced sampling: each window first draws a value of this label uniformly, then a position within it. */
  balance?: string | null;
}

/** Everything a resumed run needs to continue with exactly the same batches (JSON-safe). */
export interface BatcherState {
  position: number;
  seed: number;
  context: number;
  batch: number;
  balance: string | null;
}

function emptyBatch(labels: LabelSpace[], B: number, T: number): TextBatch {
  return { inputs: new Uint32Array(B * T), targets: new Uint32Array(B * T), labels: Object.fromEntries(labels.map((l) => [l.name, new Uint32Array(B)])), windows: 0, targetCount: 0 };
}

/** Write window `w` of a batch from tokens[start, end) (end - start <= T + 1); returns its target count. */
function fillWindow(out: TextBatch, w: number, T: number, tokens: Uint32Array, start: number, end: number, eot: number): number {
  const n = Math.max(0, end - start - 1);
  const base = w * T;
  out.inputs.set(tokens.subarray(start, start + n), base);
  out.targets.set(tokens.subarray(start + 1, start + 1 + n), base);
  out.inputs.fill(eot, base + n, base + T);
  out.targets.fill(IGNORE, base + n, base + T);
  return n;
}

/** First index i with cum[i] > x (cum ascending). */
function upperBound(cum: Float64Array, x: number): number {
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Random training batches. Batch `step` depends only on (seed, step) and the data, so the state is
 * just the position: `state()` / `restore()` resume a run with exactly the batches it would have had.
 */
export class Batcher {
  readonly context: number;
  readonly batch: number;
  readonly seed: number;
  readonly balance: string | null;
  position = 0;
  private readonly groups: number;
  /** Per stratum (one per value of the balance label, or one for all): its groups and their cumulative lengths. */
  private readonly strata: { groups: Uint32Array; cum: Float64Array }[];
  private readonly out: TextBatch;

  constructor(private readonly split: PreparedSplit, private readonly labels: LabelSpace[], private readonly eot: number, opts: BatcherOptions) {
    this.context = opts.context;
    this.batch = opts.batch;
    this.seed = opts.seed;
    this.balance = opts.balance ?? null;
    if (!(this.context >= 1 && this.batch >= 1)) throw new Error(`batcher needs context >= 1 and batch >= 1 (got ${this.context}, ${this.batch})`);
    this.groups = split.groupOffsets.length - 1;
    // Windows need at least two tokens (one input, one target).
    const usable = (g: number) => split.groupOffsets[g + 1]! - split.groupOffsets[g]! >= 2;
    const stratumOf: number[][] = [];
    if (this.balance) {
      const space = labels.find((l) => l.name === this.balance);
      if (!space) throw new Error(`balance label '${this.balance}' is not one of the data's labels (${labels.map((l) => l.name).join(', ') || 'none'})`);
      for (let v = 0; v < space.values.length; v++) stratumOf.push([]);
      for (let g = 0; g < this.groups; g++) if (usable(g)) stratumOf[split.groupLabels[this.balance]![g]!]!.push(g);
    } else {
      stratumOf.push([]);
      for (let g = 0; g < this.groups; g++) if (usable(g)) stratumOf[0]!.push(g);
    }
    this.strata = stratumOf.filter((s) => s.length > 0).map((gs) => {
      const cum = new Float64Array(gs.length);
      let acc = 0;
      gs.forEach((g, i) => { acc += this.startsIn(g); cum[i] = acc; });
      return { groups: Uint32Array.from(gs), cum };
    });
    if (!this.strata.length) throw new Error('batcher: the split has no text (every group is shorter than two tokens)');
    this.out = emptyBatch(labels, this.batch, this.context);
  }

  /** Number of distinct window starts in group g (a group shorter than T+1 has one: its start). */
  private startsIn(g: number): number {
    const len = this.split.groupOffsets[g + 1]! - this.split.groupOffsets[g]!;
    return Math.max(1, len - this.context);
  }

  /**
   * Batch number `step`. Without balance, every window start in the split is equally likely; with
   * balance, each window picks a label value uniformly, then a start among that value's windows.
   * The returned object is reused by the next call.
   */
  at(step: number): TextBatch {
    const rng = new Rng(this.seed, 0xba7c4, step);
    const T = this.context;
    const out = this.out;
    let count = 0;
    for (let w = 0; w < this.batch; w++) {
      const s = this.strata[this.strata.length === 1 ? 0 : rng.int(this.strata.length)]!;
      const x = rng.next() * s.cum[s.cum.length - 1]!;
      const i = upperBound(s.cum, x);
      const g = s.groups[i]!;
      const offset = Math.floor(x - (i > 0 ? s.cum[i - 1]! : 0));
      const g0 = this.split.groupOffsets[g]!;
      const g1 = this.split.groupOffsets[g + 1]!;
      const start = g0 + Math.min(offset, Math.max(0, g1 - g0 - T - 1));
      count += fillWindow(out, w, T, this.split.tokens, start, Math.min(start + T + 1, g1), this.eot);
      for (const l of this.labels) out.labels[l.name]![w] = this.split.groupLabels[l.name]![g]!;
    }
    out.windows = this.batch;
    out.targetCount = count;
    return out;
  }

  next(): TextBatch {
    return this.at(this.position++);
  }

  state(): BatcherState {
    return { position: this.position, seed: this.seed, context: this.context, batch: this.batch, balance: this.balance };
  }

  /** Continue from a saved state; it must come from a batcher with the same settings. */
  restore(state: BatcherState): void {
    if (state.seed !== this.seed || state.context !== this.context || state.batch !== this.batch || (state.balance ?? null) !== this.balance) {
      throw new Error(`batcher state is for seed ${state.seed}, context ${state.context}, batch ${state.batch}, balance ${state.balance}; this batcher has ${this.seed}, ${this.context}, ${this.batch}, ${this.balance}`);
    }
    this.position = state.position;
  }
}

/** Windows of a sequential pass: every token of a group after its first is a target exactly once. */
function* sequentialWindows(split: PreparedSplit, T: number): Generator<{ g: number; start: number; end: number }> {
  for (let g = 0; g + 1 < split.groupOffsets.length; g++) {
    const g0 = split.groupOffsets[g]!;
    const g1 = split.groupOffsets[g + 1]!;
    for (let s = g0; s + 1 < g1; s += T) yield { g, start: s, end: Math.min(s + T + 1, g1) };
  }
}

/** How many batches a sequential pass over the split takes. */
export function sequentialBatchCount(split: PreparedSplit, context: number, batch: number): number {
  let windows = 0;
  for (let g = 0; g + 1 < split.groupOffsets.length; g++) {
    const len = split.groupOffsets[g + 1]! - split.groupOffsets[g]!;
    if (len >= 2) windows += Math.ceil((len - 1) / context);
  }
  return Math.ceil(windows / batch);
}

/**
 * Every token of a split once, in order, in batches of B windows (for validation perplexity:
 * exp(sum of losses / sum of targetCount)). The last batch is padded with empty windows. Each
 * yielded batch is a fresh object.
 */
export function* sequentialBatches(data: Pick<PreparedText, 'labels' | 'eot'>, split: PreparedSplit, context: number, batch: number): Generator<TextBatch> {
  let out = emptyBatch(data.labels, batch, context);
  let w = 0;
  let count = 0;
  const finish = () => {
    for (let k = w; k < batch; k++) {
      out.inputs.fill(data.eot, k * context, (k + 1) * context);
      out.targets.fill(IGNORE, k * context, (k + 1) * context);
    }
    out.windows = w;
    out.targetCount = count;
    return out;
  };
  for (const { g, start, end } of sequentialWindows(split, context)) {
    count += fillWindow(out, w, context, split.tokens, start, end, data.eot);
    for (const l of data.labels) out.labels[l.name]![w] = split.groupLabels[l.name]![g]!;
    if (++w === batch) {
      yield finish();
      out = emptyBatch(data.labels, batch, context);
      w = 0;
      count = 0;
    }
  }
  if (w > 0) yield finish();
}

/** A training batcher over a prepared data set's train split. */
export function trainBatcher(data: PreparedText, opts: BatcherOptions): Batcher {
  return new Batcher(data.train, data.labels, data.eot, opts);
}
