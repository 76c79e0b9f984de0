// CPU references of the expert-choice kernels (kernels/moe-expert-choice.ts), in the kernels' order
// of operations so that the choices agree exactly and values to f32 rounding. Expert choice uses
// the token-choice slot layout with one assignment per (token, expert): a = n·E + e, sel[a] = e,
// gate[a] the token's score of expert e; an expert keeps `capacity` assignments of each group of
// `group` consecutive tokens, by score (ties to the lower token), and the rest are dropped
// (pos = NO_SLOT). Expert e's slots are e·c .. e·c + c − 1 with c = capacity · groups, group g's
// at e·c + g·capacity + rank.
import { NO_SLOT } from '../routing/slots.js';
import { STAT, statsLength } from './moe.js';

export interface ExpertChoiceShape {
  tokens: number;
  experts: number;
  /** Tokens an expert chooses among: the context length, or all N tokens of the micro-batch. */
  group: number;
  /** Tokens an expert takes from each group (1 .. group). */
  capacity: number;
  score: 'softmax' | 'sigmoid';
}

/** Slots of one expert over all groups. */
export const expertSlots = (s: ExpertChoiceShape) => s.capacity * (s.tokens / s.group);

/** Router forward: every (token, expert) pair is an assignment, sel[a] = e, gate[a] = the score. */
export function expertChoiceRouterReference(s: ExpertChoiceShape, logits: Float32Array): { sel: Uint32Array; gate: Float32Array } {
  const { tokens: N, experts: E } = s;
  const sel = new Uint32Array(N * E);
  const gate = new Float32Array(N * E);
  for (let n = 0; n < N; n++) {
    const l = logits.subarray(n * E, n * E + E);
    let m = -3.0e38;
    for (const v of l) m = Math.max(m, v);
    let z = 0;
    for (const v of l) z += Math.exp(v - m);
    for (let e = 0; e < E; e++) {
      sel[n * E + e] = e;
      gate[n * E + e] = s.score === 'softmax' ? Math.exp(l[e]! - m) / z : 1 / (1 + Math.exp(-l[e]!));
    }
  }
  return { sel, gate };
}

/** The rank of token n's score for expert e among its group (higher first, ties to the lower token). */
export function expertChoiceRank(s: ExpertChoiceShape, gate: Float32Array, n: number, e: number): number {
  const E = s.experts;
  const g0 = Math.floor(n / s.group) * s.group;
  const v = gate[n * E + e]!;
  let rank = 0;
  for (let m = g0; m < g0 + s.group; m++) {
    const w = gate[m * E + e]!;
    if (w > v || (w === v && m < n)) rank++;
  }
  return rank;
}

/**
 * Dispatch: offsets (e·c), perm (slot → assignment), pos (assignment → slot or NO_SLOT), the kept
 * selections (sel[a] = e when kept, else NO_SLOT: what evaluation reads) and the statistics: counts
 * the tokens each expert took, mean scores, z and entropy as token choice's, `dropped` the fraction
 * of tokens no expert chose.
 */
export function expertChoiceDispatchReference(s: ExpertChoiceShape, gate: Float32Array, logits: Float32Array) {
  const { tokens: N, experts: E } = s;
  const c = expertSlots(s);
  const offsets = Uint32Array.from({ length: E + 1 }, (_, e) => e * c);
  const perm = new Uint32Array(E * c);
  const pos = new Uint32Array(N * E).fill(NO_SLOT);
  const kept = new Uint32Array(N * E).fill(NO_SLOT);
  const stats = new Float32Array(statsLength(E));
  let unrouted = 0;
  let z = 0;
  let ent = 0;
  const P = new Array<number>(E).fill(0);
  for (let n = 0; n < N; n++) {
    let any = false;
    for (let e = 0; e < E; e++) {
      const rank = expertChoiceRank(s, gate, n, e);
      if (rank < s.capacity) {
        const slot = e * c + Math.floor(n / s.group) * s.capacity + rank;
        pos[n * E + e] = slot;
        perm[slot] = n * E + e;
        kept[n * E + e] = e;
        any = true;
      }
    }
    if (!any) unrouted++;
    const l = logits.subarray(n * E, n * E + E);
    let m = -3.0e38;
    for (const v of l) m = Math.max(m, v);
    let sum = 0;
    for (const v of l) sum += Math.exp(v - m);
    z += (m + Math.log(sum)) ** 2;
    for (let e = 0; e < E; e++) {
      const p = Math.exp(l[e]! - m) / sum;
      if (p > 0) ent -= p * Math.log(p);
      P[e]! += gate[n * E + e]!;
    }
  }
  let bal = 0;
  for (let e = 0; e < E; e++) {
    stats[STAT.counts + e] = c;
    stats[STAT.counts + E + e] = P[e]! / N;
    bal += (1 / E) * (P[e]! / N);
  }
  stats[STAT.balance] = E * bal;
  stats[STAT.z] = z / N;
  stats[STAT.dropped] = unrouted / N;
  stats[STAT.entropy] = ent / N;
  return { offsets, perm, pos, sel: kept, stats };
}
