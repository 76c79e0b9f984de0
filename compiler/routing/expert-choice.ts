// Expert-choice routing (Zhou et al. 2022, "Mixture-of-Experts with Expert Choice Routing"): each
// expert takes its top-c tokens by router score, so a token gets zero, one or several experts and
// every expert is full (load balanced by construction). `choice expert(batch)` (the paper's form)
// chooses among the N = batch × context tokens of a micro-batch, `choice expert(sequence)` among
// the tokens of each sequence; per group of G tokens
//
//   c = min(G, max(1, ceil(capacity × G × top / experts)))
//
// (rounded up, as token choice's capacity). The gate is the token's score of the expert (softmax
// over experts, or sigmoid), gathered at the chosen slots, not renormalised.
//
// It is not a router kind but a choice any scoring router (learned, frozen, cosine) can make: it
// keeps the router's logits and parameters (the same linear map as token choice, so the same
// parameter count) and changes who picks. The slot table is token choice's (routing/slots.ts) with
// one assignment per (token, expert), a = n·E + e: dropped where the expert did not choose the token.
// So the grouped matmuls, combine, its backward and the router backward run unchanged with top E.
//
// Not causal: whether expert e takes token t depends on the scores of the group's later tokens.
// In a causal language model the routing of a token then sees the future (frontend/validate.ts
// warns at `moec check`; docs/ROUTING.md).
import type { MoeConfig } from '../frontend/types.js';
import type { Gpt2Spec } from '../graph/gpt2.js';
import type { ExpertChoiceShape } from '../reference/moe-expert-choice.js';
import { routers } from './index.js';
import { type MoeUnsupported, unsupported } from './router.js';

export interface ExpertChoice {
  group: 'batch' | 'sequence';
}

/** The expert choice a config makes, or null for token choice. */
export const expertChoiceOf = (moe: MoeConfig): ExpertChoice | null =>
  moe.choice === 'expert' && moe.dispatch !== 'soft' ? { group: moe.choiceGroup ?? 'batch' } : null;

/** Tokens an expert takes of each group of G: ceil(capacity · G · top / E), within 1..G. */
export const expertChoiceCapacity = (moe: MoeConfig, G: number) => Math.min(G, Math.max(1, Math.ceil((moe.capacity * G * moe.top) / moe.experts)));

/**
 * Experts a token uses on average (what its active parameters count): every expert under Soft MoE,
 * E·c/G under expert choice (the E experts take c of each group of G tokens; capacity · top when
 * c divides evenly, a little more where it is rounded up), else min(top, E). `batch` is the
 * micro-batch's sequences: expert choice over the batch needs it; without it the count is the
 * unrounded capacity · top.
 */
export function expertsPerToken(moe: MoeConfig, context: number, batch?: number): number {
  if (moe.dispatch === 'soft') return moe.experts;
  const ec = expertChoiceOf(moe);
  if (!ec) return Math.min(moe.top, moe.experts);
  const G = ec.group === 'sequence' ? context : batch === undefined ? undefined : batch * context;
  if (G === undefined) return Math.min(moe.experts, moe.capacity * moe.top);
  return (moe.experts * expertChoiceCapacity(moe, G)) / G;
}

/** The expert-choice kernels' shape for a model's micro-batch (N = batch · context tokens). */
export function expertChoiceShape(moe: MoeConfig, s: Pick<Gpt2Spec, 'batch' | 'context'>, score: ExpertChoiceShape['score']): ExpertChoiceShape {
  const ec = expertChoiceOf(moe);
  if (!ec) throw new Error('expertChoiceShape of a token-choice config');
  const N = s.batch * s.context;
  const group = ec.group === 'sequence' ? s.context : N;
  return { tokens: N, experts: moe.experts, group, capacity: expertChoiceCapacity(moe, group), score };
}

/** What expert choice cannot take, at the key to change. */
export function refuseExpertChoice(moe: MoeConfig): MoeUnsupported | null {
  if (!expertChoiceOf(moe)) return null;
  const no = unsupported;
  const r = routers[moe.router];
  if (!r.scores) return no('router', `expert choice ranks tokens by router score; a ${moe.router} router has none`, 'use choice token, or a learned, frozen or cosine router');
  if (moe.balance > 0) return no('balance', 'expert choice balances the load by construction (every expert takes c tokens); the balance loss has nothing to act on', 'use balance 0 with choice expert');
  if (moe.unit !== 'token') return no('unit', 'expert choice picks tokens; with sequence routing there is no token score to rank', 'use unit token with choice expert');
  if (moe.dropless) return no('dropless', 'expert choice takes capacity x tokens x top / experts tokens per expert; dropless gives it no number to take', 'use a capacity factor, e.g. capacity 1');
  if (moe.second === 'sampled') return no('second', 'a sampled second expert is a token-choice rule', 'use second top with choice expert');
  if (moe.gate === 'topk-softmax') return no('gate', 'topk-softmax renormalises over a token\'s top k; under expert choice a token has no fixed k', 'use gate softmax-topk (the paper\'s softmax) or sigmoid');
  if (moe.normalize) return no('normalize', 'under expert choice a token\'s gates are its scores of the experts that chose it, not renormalised', 'use normalize false with choice expert');
  if ((moe.biasRate ?? 0) > 0) return no('biasRate', 'auxiliary-loss-free balancing biases a token-choice top-k; expert choice balances the load by construction', 'use bias-rate 0 with choice expert');
  return null;
}
