// The records of a run directory, as they are stored on disk (snake_case JSON, one schema per file).
import type { Comparison, ParamCount, TrialConfig } from '../../compiler/frontend/types.js';
import type { TrialStatus } from '../train/events.js';

/** What the sweep runner knows when it creates a run. */
export interface SweepInfo {
  sweep: string;
  /** The .moe file the sweep came from. */
  file: string;
  preset: string | null;
  adapter: string;
  trials: { id: string; name: string }[];
  /** The sweep's `compare` lines, for the report. */
  comparisons?: Comparison[];
  /** The sweep's zip blocks: each the paths swept together, one dimension of the study. */
  zips?: string[][];
}

/** runs/<sweep>/index.json */
export interface SweepIndex {
  version: 1;
  sweep: string;
  file: string;
  preset: string | null;
  adapter: string;
  created: string;
  updated: string;
  trials: { id: string; name: string; status: TrialStatus }[];
  /** The sweep's `compare` lines (absent in runs of older moec versions). */
  comparisons?: Comparison[];
  /** The sweep's zip blocks, each the paths swept together (absent: none, or an older moec version). */
  zips?: string[][];
}

/** runs/<sweep>/<trial>/config.json: a compiler Trial without its position in the sweep. */
export interface TrialRecord {
  id: string;
  name: string;
  params: Record<string, string>;
  seed: number;
  baseline: 'total' | 'active' | null;
  matches?: string | null;
  params_count: ParamCount;
  config: TrialConfig;
}

export interface TrainMetric {
  kind: 'train';
  step: number;
  /** The language-model loss (runs before issue 18: the total). */
  loss: number;
  lr: number;
  tokens_per_s: number;
  time_s: number;
  /** exp(loss); the loss the optimiser minimised; its weighted aux terms (docs/MOE-DIAGNOSTICS.md). */
  ppl?: number;
  total?: number;
  balance_loss?: number;
  z_loss?: number;
  /** Per routing layer, the load diagnostics of the window since the last train record. */
  moe?: MoeLayerMetric[];
}

/** One routing layer's load over a logging window: tokens per expert are assignments, before capacity drops. */
export interface MoeLayerMetric {
  layer: number;
  /** Micro-batches in the window. */
  steps: number;
  tokens: { min: number; p10: number; median: number; p90: number; max: number; mean: number };
  /** max / mean tokens per expert (1 when balanced). */
  overload: number;
  /** Experts given no token over the whole window. */
  dead: number;
  /** Fraction of the window's tokens the busiest expert took (top / experts when balanced, 1 when every token went to it). */
  maxShare: number;
  /** That fraction when the load is balanced: top / experts. */
  fairShare: number;
  /** Means over the window: fraction of assignments over capacity, router entropy (nats), balance and z losses (unweighted). */
  dropped: number;
  entropy: number;
  balance: number;
  z: number;
}
export interface EvalMetric {
  kind: 'eval';
  step: number;
  valid_loss: number;
  valid_ppl: number;
  [extra: string]: unknown;
}
export type Metric = TrainMetric | EvalMetric;

/** One line of experts.jsonl: expert assignment counts on one data set, grouped by one label. */
export interface ExpertRecord {
  step: number;
  /** Data set name, e.g. "wiki.valid". */
  data: string;
  /** Label name, e.g. "language". */
  label: string;
  /** Per MoE layer: label value -> tokens (or sequences) routed to each expert. */
  layers: { layer: number; counts: Record<string, number[]> }[];
}

export type TrialState = 'running' | 'done' | 'failed' | 'stopped';

/** runs/<sweep>/<trial>/status.json */
export interface StatusRecord {
  state: TrialState;
  step: number;
  steps: number;
  error?: string;
  started: string;
  finished?: string;
  /** Seconds over every segment of the trial (each resume adds its own). */
  wall_s: number;
  /** Tokens (samples) trained per second of training, over every segment; evaluations excluded. */
  tokens_per_s: number;
  /** Seconds spent in training steps, over every segment: what tokens_per_s divides by. */
  train_s?: number;
  /** Kernels compiled for this process's segment, and the seconds it took (not in wall_s). */
  compile_s?: number;
  adapter: string;
}

/** runs/<sweep>/<trial>/resumes.jsonl: a resume whose adapter or lowering differs from its checkpoint's. */
export interface ResumeRecord {
  step: number;
  adapter: string;
  lowering: string;
  note: string;
}

/** Training state saved beside the weights: the optimizer step, the data position, the RNG state, ... (any JSON). */
export type CheckpointState = Record<string, unknown>;

export interface CheckpointRef {
  step: number;
  path: string;
  bytes: number;
}
