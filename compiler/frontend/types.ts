// The resolved pipeline: plain JSON, the contract between the .moe front end and the rest of
// the compiler (lowering to GPU plans) and the runtime. Mirrors compiler/frontend/schema.ts,
// which documents every field (see docs/LANGUAGE.md).

import type { SourceKind } from './corpora.js';

export type { SourceKind };

export interface DataSource {
  kind: SourceKind;
  /** Languages of a multilingual corpus; empty = all. */
  languages: string[];
  /** File/folder for text | folder | jsonl | parquet, resolved relative to the .moe file that wrote it; else null. */
  path: string | null;
}

export interface SyntheticClusters {
  clusters: number;
  patches: number;
  dim: number;
  noise: number;
  feature: [number, number];
  distractor: [number, number];
  samples: number;
  /**
   * Chen et al. 2022's setup: the centre signal's range, the data scale, the data seed (null: the
   * trial's seed). Resolve always sets them; configs built in code may leave them out (then
   * [0.5, 2], 1 and 0, the schema's defaults).
   */
  centre?: [number, number];
  scale?: number;
  seed?: number | null;
}

export interface DataSet {
  name: string;
  source: DataSource;
  tokenizer: 'gpt2' | 'bytes';
  context: number;
  /** Validation fraction, 0..1. */
  valid: number;
  /** Max characters used (0 = all). */
  limit: number;
  /** Text field (jsonl/parquet). */
  text: string;
  /** Label field (jsonl/parquet) or label name of folders. */
  label: string | null;
  /** Labels available for label routers and expert analyses, e.g. ['language']. */
  labels: string[];
  /** 50257 for gpt2, 256 for bytes, 0 for clusters. */
  vocab: number;
  synthetic: SyntheticClusters;
}

export type RouterKind = 'learned' | 'frozen' | 'random' | 'label' | 'cosine' | 'hash';

export interface MoeConfig {
  every: number;
  experts: number;
  top: number;
  unit: 'token' | 'sequence';
  /** Causal sequence routing: pool the first `prefix` tokens; null = whole sequence. */
  prefix: number | null;
  scope: 'layer' | 'global';
  router: RouterKind;
  /** Label for router 'label'. */
  label: string | null;
  /** Projection dim for router 'cosine'. */
  dim: number;
  gate: 'softmax-topk' | 'topk-softmax' | 'sigmoid';
  normalize: boolean;
  noise: number;
  noiseDist: 'gaussian' | 'uniform';
  capacity: number;
  dropless: boolean;
  balance: number;
  zloss: number;
  shared: number;
  /** Hidden width of each routed expert (absolute, after `granularity`); null or absent: the model's `ffn`. */
  expertWidth?: number | null;
  /** Hidden width of each shared expert (absolute); null or absent: the model's `ffn`. */
  sharedWidth?: number | null;
  /** DeepSeekMoE's split m, already applied by resolution to experts, top and expertWidth (a record of what was written); absent: 1. */
  granularity?: number;
  expert: 'mlp' | 'linear';
  activation: 'gelu' | 'relu' | 'cubic';
  second: 'top' | 'sampled';
  /** Token choice, or expert choice (Zhou et al. 2022; compiler/routing/expert-choice.ts). Absent: token. */
  choice?: 'token' | 'expert';
  /** For expert choice: the tokens an expert chooses among. Absent: batch. */
  choiceGroup?: 'batch' | 'sequence';
  dispatch: 'sparse' | 'soft';
  slots: number;
  /** 0-based indices of MoE layers (derived from `every`). */
  layers: number[];
  /** The patch model's expert filters: N(0, initScale²) or U(±initScale/√dim) (null scale: 0.1 or 1). Optional for configs built in code (normal). */
  init?: 'normal' | 'fan-in';
  initScale?: number | null;
  /** Auxiliary-loss-free balancing rate γ (0: off). Optional for configs built in code (0). */
  biasRate?: number;
  /** The balance loss over the micro-batch or per sequence, averaged (DeepSeek-V3). Optional for configs built in code (batch). */
  balanceOver?: 'batch' | 'sequence';
}

export interface Model {
  name: string;
  layers: number;
  width: number;
  heads: number;
  /** FFN hidden width (absolute), per expert in MoE layers. */
  ffn: number;
  dropout: number;
  vocab: number;
  context: number;
  /** null: dense model. */
  moe: MoeConfig | null;
}

export interface Train {
  data: string;
  model: string;
  steps: number;
  batch: number;
  accumulate: number;
  optimizer: 'adamw' | 'adam' | 'sgd' | 'ngd';
  lr: number;
  betas: [number, number];
  eps: number;
  wd: number;
  schedule: 'constant' | 'cosine' | 'linear';
  /** Warmup steps (absolute). */
  warmup: number;
  /** Final lr as a fraction of lr. */
  minLr: number;
  clip: number;
  seed: number;
  precision: 'f32' | 'f16';
  sample: 'uniform' | 'balanced';
  /** Label for sample 'balanced'. */
  balanceBy: string | null;
  /** The patch model (cluster task): the router's peak rate (null: lr) and optimiser (null: from `optimizer`), full-batch steps. */
  routerLr?: number | null;
  routerOptimizer?: 'sgd' | 'adamw' | null;
  /** The router parameters' weight decay (null: wd). Optional for configs built in code. */
  routerWd?: number | null;
  fullBatch?: boolean;
}

export interface EvalRef {
  data: string;
  split: 'train' | 'valid';
}

export interface Evaluate {
  every: number;
  batches: number;
  perplexity: EvalRef[];
  experts: (EvalRef & { label: string })[];
  average: number;
}

export interface SweepDimension {
  kind: 'product' | 'zip';
  params: { path: string; values: string[] }[];
  when: { path: string; op: '==' | '!='; value: string } | null;
}

/** `compare PATH [against VALUE] [by PATH, ...]`: an effect the report states first. */
export interface Comparison {
  path: string;
  /** The value the others are measured against; null: the dimension's first value. */
  reference: string | null;
  /** Swept paths held fixed one row per value combination; the rest are averaged over. */
  by: string[];
}

export interface SweepSpec {
  dimensions: SweepDimension[];
  seeds: number[];
  baselines: ('total' | 'active')[];
  comparisons: Comparison[];
}

export interface Pipeline {
  version: 1;
  preset: string | null;
  data: Record<string, DataSet>;
  model: Model;
  train: Train;
  evaluate: Evaluate;
  sweep: SweepSpec | null;
}

/** One trial's configuration: a pipeline without the sweep. */
export type TrialConfig = Omit<Pipeline, 'sweep'> & { sweep: null };

export interface ParamCount {
  /** Every trainable parameter. */
  total: number;
  /** Parameters one token uses (k routed + shared experts in MoE layers). */
  active: number;
}

export interface Trial {
  /** Short stable hash of the canonical config: same file, same ids. */
  id: string;
  /** Readable: `unit=sequence,top=2,experts=8,seed=1`; `dense=total,ffn=3072,seed=1` for baselines; `base` when nothing is swept. */
  name: string;
  index: number;
  /** Swept path -> value as written. */
  params: Record<string, string>;
  seed: number;
  /** null, or the kind of dense baseline this trial is. */
  baseline: 'total' | 'active' | null;
  /** For baselines: the name of the MoE trial it was matched to. */
  matches: string | null;
  params_count: ParamCount;
  config: TrialConfig;
}
