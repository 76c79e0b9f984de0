// The settings a trial's lowering refuses, decided from its configuration alone, so that
// `moec check` reports them (with the trials they concern) before anything is compiled,
// and the lowering refuses exactly the same ones.
import type { TrialConfig } from '../frontend/types.js';
import type { Gpt2Spec } from '../graph/gpt2.js';
import { unsupportedMoe } from '../graph/moe.js';
import { unsupportedPatch } from './patch-settings.js';

/** A setting the lowering does not implement: where it is (a JSON pointer), why, what to write. */
export interface Refusal {
  message: string;
  ptr: string;
  hint: string;
}

/**
 * The first setting of `c` the lowering refuses, or null; `spec` is the trial's GPT-2 shape.
 * Rules the front end already enforces (frontend/validate.ts: heads dividing the width, top at most
 * the experts, prefix within the context) are not repeated here.
 */
export function loweringRefusal(c: TrialConfig, spec: Gpt2Spec): Refusal | null {
  if (c.data[c.train.data]?.source.kind === 'clusters') return unsupportedPatch(c);
  // Also the front end's rule; kept because compileTrial is called on stored configs (eval, export).
  if (c.train.optimizer === 'ngd') return { message: 'optimizer ngd (normalised gradient descent per expert, Chen et al. 2022) is implemented for the patch model of the cluster task only', ptr: '/train/optimizer', hint: 'use optimizer adamw, adam or sgd for language models' };
  if (c.train.precision === 'f16' && c.model.moe) return { message: "precision f16 is lowered for dense models only: the MoE layers' grouped expert matmuls are f32", ptr: '/train/precision', hint: 'use precision f32 for MoE models' };
  const bad = c.model.moe ? unsupportedMoe(c.model.moe, spec) : null;
  return bad ? { message: bad.message, ptr: `/model/moe/${bad.field}`, hint: bad.hint } : null;
}
