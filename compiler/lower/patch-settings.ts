// Which trial settings the patch model of the cluster task (Chen et al. 2022) can lower. Keys that
// do not apply at all are refused by the front end (validate.ts); these are values of keys that do.
import type { TrialConfig } from '../frontend/types.js';

/**
 * Standard deviation of the filters' initialisation, for every optimizer. Chen et al. start the
 * experts small (σ0 ≪ 1) and train them with normalised gradient descent (`optimizer ngd`), whose
 * step has size lr whatever the gradient's scale; with plain SGD the cubic experts need a start
 * large enough for their gradient (3·<w,x>²·x) not to vanish. One value keeps sgd and ngd trials
 * comparable from the same start.
 */
export const PATCH_INIT_STD = 0.1;

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
