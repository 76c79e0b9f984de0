// Gates: how a scoring router turns its logits into the weights of the kept experts.
import type { MoeConfig } from '../frontend/types.js';
import type { MoeRouterShape } from '../reference/moe.js';

export interface Gate {
  /** Score of every expert: softmax over all, or an independent sigmoid each. */
  score: MoeRouterShape['score'];
  /** Whether the K kept scores are renormalised to sum to 1. */
  normalize(moe: MoeConfig): boolean;
}

export const gates: Record<MoeConfig['gate'], Gate> = {
  'softmax-topk': { score: 'softmax', normalize: (moe) => moe.normalize },
  // Top-k then a softmax over the kept logits is softmax-topk renormalised.
  'topk-softmax': { score: 'softmax', normalize: () => true },
  sigmoid: { score: 'sigmoid', normalize: (moe) => moe.normalize },
};
