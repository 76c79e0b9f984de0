// The event stream of a running sweep: the trainer emits, the terminal UI and the run store listen.
// Plain data, so a non-TTY logger, the Ink UI and tests can all consume the same stream.

export interface TrialInfo {
  id: string;
  /** Human name, e.g. "top=2 unit=sequence seed=1". */
  name: string;
  steps: number;
  params: { total: number; active: number };
  /** Number of MoE layers and experts per layer (0 for a dense model), for the load heat map. */
  moeLayers: number;
  experts: number;
  /** 'classification' (the cluster task): evaluations report accuracy, and a training perplexity means nothing. */
  task?: 'language-model' | 'classification';
}

/** One routing layer's load over a logging window (runtime/train/readout.ts). */
export interface LayerLoad {
  layer: number;
  overload: number;
  dead: number;
  maxShare: number;
  fairShare: number;
}

export type TrialStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'stopped';

export type SweepEvent =
  | { type: 'sweep-start'; sweep: string; adapter: string; out: string; trials: TrialInfo[] }
  /** Kernels of the trial compiled so far (before its first step; not counted in its throughput or ETA). */
  | { type: 'compile'; id: string; done: number; total: number; /** Of done, found compiled by an earlier trial. */ shared: number; seconds: number }
  | { type: 'trial-start'; id: string; resumedFrom?: number; /** Set when the resume runs other kernels than the checkpoint's. */ note?: string }
  | {
      type: 'step';
      id: string;
      step: number;
      loss: number;
      lr: number;
      tokensPerSec: number;
      /** Seconds since the trial started (this process). */
      elapsed: number;
      /** Per MoE layer, at this step: the balance and z losses and the fraction of assignments dropped. */
      moe?: { balance: number[]; z: number[]; dropped: number[] };
      /** `loss` is the language-model loss; total adds the weighted auxiliary losses (aux) the optimiser also minimised. */
      total?: number;
      aux?: { balance: number; z: number };
      /** Per routing layer, over the window since the last step event: max/mean load, experts given no token, the busiest expert's share of the tokens (and that share when balanced). */
      load?: LayerLoad[];
    }
  | {
      type: 'eval';
      id: string;
      step: number;
      validLoss: number;
      validPpl: number;
      /** Test accuracy, for tasks that classify (the cluster task). */
      validAcc?: number;
      /** Fraction of routed tokens per expert, per MoE layer (layers × experts); absent for dense. */
      expertLoad?: number[][];
    }
  | { type: 'checkpoint'; id: string; step: number; path: string }
  | { type: 'trial-end'; id: string; status: Exclude<TrialStatus, 'pending' | 'running'>; error?: string; /** Over every segment, resumes included. */ wallSeconds: number; tokensPerSec?: number }
  | { type: 'sweep-end'; out: string };

export type SweepListener = (e: SweepEvent) => void;
