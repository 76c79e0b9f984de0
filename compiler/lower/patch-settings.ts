// Which trial settings the patch model of the cluster task (Chen et al. 2022) can lower. Keys that
// do not apply at all are refused by the front end (validate.ts); these are values of keys that do.
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

export interface PatchUnsupported { message: string; ptr: string; hint: string }

export function unsupportedPatch(c: TrialConfig): PatchUnsupported | null {
  const m = c.model.moe;
  const no = (ptr: string, message: string, hint: string) => ({ ptr, message, hint });
  if (!m) return no('/model', 'the patch model of the cluster task is set by a moe block (its experts and router)', 'add moe { experts 1  top 1 ... } for the single model, or experts N for a mixture');
  if (m.top !== 1) return no('/model/moe/top', `the patch model routes each sample to one expert; top ${m.top} is not lowered for it`, 'write top 1');
  if (m.router !== 'learned' && m.router !== 'frozen') return no('/model/moe/router', `router '${m.router}' is not lowered for the patch model`, 'use router learned or router frozen');
  if (m.gate !== 'softmax-topk') return no('/model/moe/gate', `gate '${m.gate}' is not lowered for the patch model; its gate is the softmax probability of the chosen expert, as in the paper`, 'use gate softmax-topk');
  if (m.normalize && m.experts > 1) return no('/model/moe/normalize', 'a renormalised top-1 gate is always 1, so the router would get no gradient', 'use normalize false');
  if (c.train.accumulate !== 1) return no('/train/accumulate', 'gradient accumulation is not lowered for the patch model', 'use accumulate 1 and a larger batch');
  if (c.train.optimizer === 'ngd' && c.train.clip > 0) return no('/train/clip', 'optimizer ngd normalises each expert\'s gradient, so gradient-norm clipping does not apply', 'write clip 0');
  if (c.train.precision !== 'f32') return no('/train/precision', `precision '${c.train.precision}' is not implemented; plans are f32`, 'use precision f32');
  return null;
}
