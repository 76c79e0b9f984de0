// Expert-choice routing (Zhou et al. 2022, "Mixture-of-Experts with Expert Choice Routing"): each
// expert takes its top-c tokens by router score, so a token gets zero, one or several experts and
// every expert is full (load balanced by construction). `choice expert(batch)` (the paper's form)
// chooses among the N = batch × context tokens of a micro-batch, `choice expert(sequence)` among
// the tokens of each sequence; per group of G tokens
//
//   c = min(G, max(1, ceil(capacity × G × top / experts)))
//
// (rounded up, as token choice's capacity). What it cannot take is compiler/rules/lower-moe.ts's. The gate is the token's score of the expert (softmax
// over experts, or sigmoid), gathered at the chosen slots, not renormalised.
//
// It is not a router kind but a choice any scoring router (learned, frozen, cosine) can make: it
// keeps the router's logits and parameters (the same linear map as token choice, so the same
// parameter count) and changes who picks. The slot table is token choice's (routing/slots.ts) with
// one assignment per (token, expert), a = n·E + e: dropped where the expert did not choose the token.
// So the grouped matmuls, combine, its backward and the router backward run unchanged with top E.
//
// Not causal: whether expert e takes token t depends on the scores of the group's later tokens.
// In a causal language model the routing of a token then sees the future (compiler/rules/model.ts
// warns at `moec check`; docs/ROUTING.md).
import type { MoeConfig } from '../frontend/types.js';
import type { Gpt2Spec } from '../graph/gpt2.js';
import type { ExpertChoiceShape } from '../reference/moe-expert-choice.js';

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
