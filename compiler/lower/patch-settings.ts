// The patch model of the cluster task's (Chen et al. 2022) settings as the lowering reads them. What
// it cannot lower is refused by the validation registry (compiler/rules/lower-patch.ts, patch.ts).
import type { TrialConfig } from '../frontend/types.js';

/**
 * Default standard deviation of the filters' `init normal`. Chen et al. start the experts small
 * (PyTorch's Conv1d init × 0.001: `init fan-in; init-scale 0.001`) and train them with normalised
 * gradient descent, whose step has size lr whatever the gradient's scale; with plain SGD the cubic
 * experts need a start large enough for their gradient (3·<w,x>²·x) not to vanish.
 */
export const PATCH_INIT_STD = 0.1;

/** The experts' initialisation: N(0, scale²), or U(±scale/√dim) (PyTorch's Conv1d default, fan-in = dim, times scale). */
export function patchExpertInit(c: TrialConfig): { kind: 'normal'; std: number } | { kind: 'uniform'; bound: number } {
  const m = c.model.moe!;
  const dim = c.data[c.train.data]!.synthetic.dim;
  if (m.init === 'fan-in') return { kind: 'uniform', bound: (m.initScale ?? 1) / Math.sqrt(dim) };
  return { kind: 'normal', std: m.initScale ?? PATCH_INIT_STD };
}

/** The router's optimiser: as written, else plain gradient descent under sgd and ngd (Chen et al.), AdamW under adamw and adam. */
export function patchRouterOptimizer(c: TrialConfig): 'sgd' | 'adamw' {
  return c.train.routerOptimizer ?? (c.train.optimizer === 'sgd' || c.train.optimizer === 'ngd' ? 'sgd' : 'adamw');
}

/** Training samples of the cluster task's data set: samples less the validation share (runtime/data/clusters.ts splits the same way). */
export function clusterTrainSamples(syn: { samples: number }, valid: number): number {
  return syn.samples - Math.round(syn.samples * valid);
}

/** Samples per step: `batch`, or with `full-batch` the whole training split. */
export function patchTrainBatch(c: TrialConfig): number {
  const ds = c.data[c.train.data]!;
  return c.train.fullBatch ? clusterTrainSamples(ds.synthetic, ds.valid) : c.train.batch;
}
