import { u } from '../kernels/wgsl.js';
// The dispatch table of a sparse MoE layer, stated once. Routing writes assignments (a token's
// claim on an expert: sel[a] the expert, gate[a] its weight); dispatch orders the kept ones
// expert-contiguously into slots (offsets[e] .. offsets[e+1] are expert e's, perm[slot] = a,
// pos[a] = slot or NO_SLOT when dropped); the grouped matmuls gather each slot's token row, combine
// scatters slots back to tokens, and the router backward sums a token's gate gradients. Every one of
// those kernels and references maps between assignments and tokens only through this module.
//
// Token-choice routing gives each token `top` consecutive assignments, a = n·top + k. Expert-choice
// routing (routing/expert-choice.ts: an expert picks its tokens, so a token gets a variable number
// of experts) uses the same layout with top = E, one assignment per (token, expert), and drops the
// pairs no expert chose; the slots are then the experts' choices, c per expert.
//
// This module is a leaf: kernels/ and reference/ import it, and it imports nothing.

/** How assignments map to tokens: token choice, `top` assignments per token, a = n·top + k. */
export interface SlotLayout {
  top: number;
}

/** An assignment that no slot holds (dropped at capacity). */
export const NO_SLOT = 0xffffffff;


/** Assignments of `tokens` token rows. */
export const assignmentCount = (l: SlotLayout, tokens: number) => tokens * l.top;
/** The token that assignment a belongs to. */
export const tokenOf = (l: SlotLayout, a: number) => Math.floor(a / l.top);
/** Token n's k-th assignment. */
export const assignmentOf = (l: SlotLayout, n: number, k: number) => n * l.top + k;

/** WGSL: the token of assignment expression `a` (unparenthesised). */
export const tokenOfWgsl = (l: SlotLayout, a: string) => `${a} / ${u(l.top)}`;
/** WGSL: token expression `n`'s k-th assignment (unparenthesised). */
export const assignmentWgsl = (l: SlotLayout, n: string, k: string) => `${n} * ${u(l.top)} + ${k}`;
/** WGSL: the k-th assignment of the first token of routing row `r` when `rep` tokens share a row. */
export const rowAssignmentWgsl = (l: SlotLayout, r: string, rep: number, k: string) => `${r} * ${u(rep * l.top)} + ${k}`;
