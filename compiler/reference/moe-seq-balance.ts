// CPU reference of the sequence-wise balance loss (DeepSeek-V3's complementary loss;
// compiler/kernels/moe-seq-balance.ts): the Switch form E·Σ_i f_i·P_i computed over the tokens of
// one sequence, then averaged over the sequences of the micro-batch. f_{b,i} is the share of
// sequence b's T·K assignments that go to expert i, P_{b,i} the mean score of expert i over its T
// tokens. Token routing only (one routing row per token).

import { assignmentOf } from '../routing/slots.js';

export interface SeqBalanceShape {
  /** Token rows N = sequences × seqLen. */
  tokens: number;
  experts: number;
  top: number;
  /** Tokens per sequence T (the context length). */
  seqLen: number;
  score: 'softmax' | 'sigmoid';
}

export const sequencesOf = (s: SeqBalanceShape) => s.tokens / s.seqLen;

/** Per-token scores of one row of logits (softmax over experts, or an independent sigmoid). */
function scores(logits: Float32Array | Float64Array, n: number, E: number, score: SeqBalanceShape['score']): number[] {
  const l = Array.from(logits.subarray(n * E, n * E + E));
  if (score === 'sigmoid') return l.map((v) => 1 / (1 + Math.exp(-v)));
  const m = Math.max(...l);
  const ex = l.map((v) => Math.exp(v - m));
  const z = ex.reduce((a, b) => a + b, 0);
  return ex.map((v) => v / z);
}

/**
 * The loss (without its weight) and each sequence's assignment counts (B×E; the backward's f,
 * a constant there), from the router's choices `sel` (N·K) and its logits (N×E; f64 for finite differences).
 */
export function seqBalanceReference(s: SeqBalanceShape, sel: Uint32Array, logits: Float32Array | Float64Array): { balance: number; counts: Float32Array } {
  const { experts: E, top: K, seqLen: T } = s;
  const B = sequencesOf(s);
  const counts = new Float32Array(B * E);
  let sum = 0;
  for (let b = 0; b < B; b++) {
    const P = new Array<number>(E).fill(0);
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      scores(logits, n, E, s.score).forEach((v, e) => { P[e]! += v; });
      for (let k = 0; k < K; k++) counts[b * E + sel[assignmentOf({ top: K }, n, k)]!]! += 1;
    }
    let seq = 0;
    for (let e = 0; e < E; e++) seq += counts[b * E + e]! * P[e]!;
    sum += seq / (T * K * T);
  }
  return { balance: (E * sum) / B, counts };
}

/**
 * d(weight · loss)/d score[n, e] = weight · E · f_{b(n),e} / (B·T): what the router backward adds to
 * each token's score gradient (f held constant, as in the batch form). N×E.
 */
export function seqBalanceScoreGrad(s: SeqBalanceShape, counts: Float32Array, weight: number): Float32Array {
  const { tokens: N, experts: E, top: K, seqLen: T } = s;
  const d = new Float32Array(N * E);
  for (let n = 0; n < N; n++) {
    const b = Math.floor(n / T);
    for (let e = 0; e < E; e++) d[n * E + e] = (weight * E * counts[b * E + e]!) / (T * K * N);
  }
  return d;
}
