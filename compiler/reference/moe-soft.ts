// CPU references for the Soft MoE kernels (compiler/kernels/moe-soft.ts; Puigcerver et al. 2023,
// "From Sparse to Soft Mixtures of Experts"). Per sequence b of T tokens, with X (T×C) the layer's
// input, logits L = X·Φ (T × M, M = E·S slots, a matmul before these kernels):
//
//   dispatch weights D = softmax of each column of L over the T tokens
//   slot inputs      X̃ = Dᵀ·X                  (M × C)
//   expert e maps its S slots X̃[e·S .. e·S+S] to Ỹ (the experts' grouped matmuls)
//   combine weights  W = softmax of each row of L over the M slots
//   output           Y = W·Ỹ                    (T × C)
//
// Slot rows are stored expert-contiguous, so the grouped expert matmuls see each expert's rows as
// one span: slot j = e·S + s of sequence b is row e·(B·S) + b·S + s (slotRow). The expert
// offsets are then e·B·S.

import { STAT, statsLength } from './moe.js';

export interface SoftShape {
  /** Sequences B (one group each). */
  seqs: number;
  /** Tokens per sequence T. */
  seqLen: number;
  width: number;
  experts: number;
  /** Slots per expert S. */
  slots: number;
}

/** Slots per sequence M = E·S, token rows N = B·T, slot rows B·M. */
export const softDims = (s: SoftShape) => ({ M: s.experts * s.slots, N: s.seqs * s.seqLen, rows: s.seqs * s.experts * s.slots });

/** Row of the expert-contiguous slot order holding slot j (= e·S + s) of sequence b. */
export const slotRow = (s: SoftShape, b: number, j: number) => Math.floor(j / s.slots) * s.seqs * s.slots + b * s.slots + (j % s.slots);

/** Expert offsets of the slot rows: e·B·S. */
export const softOffsets = (s: SoftShape) => Uint32Array.from({ length: s.experts + 1 }, (_, e) => e * s.seqs * s.slots);

/** D (softmax over each sequence's tokens, per slot) and W (softmax over slots, per token), both N×M. */
export function softWeightsReference(s: SoftShape, logits: Float32Array): { D: Float32Array; W: Float32Array } {
  const { M, N } = softDims(s);
  const T = s.seqLen;
  const D = new Float32Array(N * M);
  const W = new Float32Array(N * M);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let j = 0; j < M; j++) m = Math.max(m, logits[n * M + j]!);
    let z = 0;
    for (let j = 0; j < M; j++) z += Math.exp(logits[n * M + j]! - m);
    for (let j = 0; j < M; j++) W[n * M + j] = Math.exp(logits[n * M + j]! - m) / z;
  }
  for (let b = 0; b < s.seqs; b++) {
    for (let j = 0; j < M; j++) {
      const at = (t: number) => (b * T + t) * M + j;
      let m = -Infinity;
      for (let t = 0; t < T; t++) m = Math.max(m, logits[at(t)]!);
      let z = 0;
      for (let t = 0; t < T; t++) z += Math.exp(logits[at(t)]! - m);
      for (let t = 0; t < T; t++) D[at(t)] = Math.exp(logits[at(t)]! - m) / z;
    }
  }
  return { D, W };
}

/** Slot inputs X̃ (B·M × C, slot rows): X̃[slotRow(b, j)] = Σ_t D[b·T + t, j] · x[b·T + t]. */
export function softDispatchReference(s: SoftShape, x: Float32Array, D: Float32Array): Float32Array {
  const { M, rows } = softDims(s);
  const { seqLen: T, width: C } = s;
  const Xs = new Float32Array(rows * C);
  for (let b = 0; b < s.seqs; b++) {
    for (let j = 0; j < M; j++) {
      const r = slotRow(s, b, j);
      for (let t = 0; t < T; t++) {
        const d = D[(b * T + t) * M + j]!;
        for (let c = 0; c < C; c++) Xs[r * C + c]! += d * x[(b * T + t) * C + c]!;
      }
    }
  }
  return Xs;
}

/** Output (N×C): out[b·T + t] = Σ_j W[b·T + t, j] · Ỹ[slotRow(b, j)]. */
export function softCombineReference(s: SoftShape, Ys: Float32Array, W: Float32Array): Float32Array {
  const { M, N } = softDims(s);
  const { seqLen: T, width: C } = s;
  const out = new Float32Array(N * C);
  for (let n = 0; n < N; n++) {
    const b = Math.floor(n / T);
    for (let j = 0; j < M; j++) {
      const r = slotRow(s, b, j);
      for (let c = 0; c < C; c++) out[n * C + c]! += W[n * M + j]! * Ys[r * C + c]!;
    }
  }
  return out;
}

/**
 * The MoE statistics layout (STAT) filled for a soft layer: counts[e] = Σ_tokens Σ_{slots of e}
 * W (the combine weight each expert receives, summing to N over experts), mean scores counts / N,
 * entropy the mean over tokens of the entropy of the token's combine weights summed per expert;
 * balance, z and dropped 0 (a Soft MoE layer has no such losses and drops nothing).
 */
export function softStatsReference(s: SoftShape, W: Float32Array): Float32Array {
  const { M, N } = softDims(s);
  const { experts: E, slots: S } = s;
  const stats = new Float32Array(statsLength(E));
  let ent = 0;
  for (let n = 0; n < N; n++) {
    for (let e = 0; e < E; e++) {
      let p = 0;
      for (let k = 0; k < S; k++) p += W[n * M + e * S + k]!;
      stats[STAT.counts + e]! += p;
      if (p > 0) ent -= p * Math.log(p);
    }
  }
  for (let e = 0; e < E; e++) stats[STAT.counts + E + e] = stats[STAT.counts + e]! / N;
  stats[STAT.entropy] = ent / N;
  return stats;
}

/**
 * Combine backward: dỸ[slotRow(b, j)] = Σ_t W[b·T + t, j] · dout[b·T + t] (B·M × C), and the
 * combine softmax's logit gradient dL[n, j] = W[n, j] · (g[n, j] − Σ_j' W[n, j'] · g[n, j']) with
 * g[n, j] = dout[n] · Ỹ[slotRow(b, j)] (N×M, written).
 */
export function softCombineBackwardReference(s: SoftShape, dout: Float32Array, Ys: Float32Array, W: Float32Array): { dYs: Float32Array; dlogits: Float32Array } {
  const { M, N, rows } = softDims(s);
  const { seqLen: T, width: C } = s;
  const dYs = new Float32Array(rows * C);
  const dlogits = new Float32Array(N * M);
  for (let n = 0; n < N; n++) {
    const b = Math.floor(n / T);
    const g = new Array<number>(M).fill(0);
    for (let j = 0; j < M; j++) {
      const r = slotRow(s, b, j);
      for (let c = 0; c < C; c++) {
        g[j]! += dout[n * C + c]! * Ys[r * C + c]!;
        dYs[r * C + c]! += W[n * M + j]! * dout[n * C + c]!;
      }
    }
    const dot = g.reduce((a, v, j) => a + v * W[n * M + j]!, 0);
    for (let j = 0; j < M; j++) dlogits[n * M + j] = W[n * M + j]! * (g[j]! - dot);
  }
  return { dYs, dlogits };
}

/**
 * Dispatch backward: dx[b·T + t] = Σ_j D[b·T + t, j] · dX̃[slotRow(b, j)] (N×C, written), and the
 * dispatch softmax's logit gradient, added to `dlogits` (N×M): per column (b, j),
 * dL[t] += D[t] · (h[t] − Σ_t' D[t'] · h[t']) with h[t] = dX̃[slotRow(b, j)] · x[b·T + t].
 */
export function softDispatchBackwardReference(s: SoftShape, x: Float32Array, D: Float32Array, dXs: Float32Array, dlogits: Float32Array): { dx: Float32Array; dlogits: Float32Array } {
  const { M, N } = softDims(s);
  const { seqLen: T, width: C } = s;
  const dx = new Float32Array(N * C);
  const dl = dlogits.slice();
  for (let b = 0; b < s.seqs; b++) {
    for (let j = 0; j < M; j++) {
      const r = slotRow(s, b, j);
      const h = new Array<number>(T).fill(0);
      for (let t = 0; t < T; t++) {
        const n = b * T + t;
        for (let c = 0; c < C; c++) {
          h[t]! += dXs[r * C + c]! * x[n * C + c]!;
          dx[n * C + c]! += D[n * M + j]! * dXs[r * C + c]!;
        }
      }
      const dot = h.reduce((a, v, t) => a + v * D[(b * T + t) * M + j]!, 0);
      for (let t = 0; t < T; t++) dl[(b * T + t) * M + j]! += D[(b * T + t) * M + j]! * (h[t]! - dot);
    }
  }
  return { dx, dlogits: dl };
}
