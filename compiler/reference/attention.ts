// CPU reference for causal multi-head self-attention over GPT-2's packed qkv, in f64 arithmetic.
// It materialises every probability row (the GPU kernels never do), so it stays obviously correct.

export interface AttentionShape {
  B: number;
  T: number;
  heads: number;
  headDim: number;
}

export interface AttentionForward {
  /** (B·T, C), head h in columns h·hd .. (h+1)·hd. */
  out: Float32Array;
  /** Log-sum-exp of each query row's scaled scores, indexed (b·heads + h)·T + t. */
  lse: Float32Array;
}

/** Index of element d of head h's q (part 0), k (1) or v (2) in row b·T+t of the packed qkv. */
export const qkvIndex = (s: AttentionShape, b: number, t: number, part: 0 | 1 | 2, h: number, d: number): number => {
  const C = s.heads * s.headDim;
  return (b * s.T + t) * 3 * C + part * C + h * s.headDim + d;
};

/** probs[j] for j ≤ t of query row t of (b, h), plus the row's log-sum-exp. */
function softmaxRow(s: AttentionShape, qkv: Float32Array, b: number, h: number, t: number): { p: Float64Array; lse: number } {
  const scale = 1 / Math.sqrt(s.headDim);
  const scores = new Float64Array(t + 1);
  for (let j = 0; j <= t; j++) {
    let dot = 0;
    for (let d = 0; d < s.headDim; d++) dot += qkv[qkvIndex(s, b, t, 0, h, d)]! * qkv[qkvIndex(s, b, j, 1, h, d)]!;
    scores[j] = dot * scale;
  }
  const max = Math.max(...scores);
  let sum = 0;
  for (let j = 0; j <= t; j++) sum += Math.exp(scores[j]! - max);
  const p = scores.map((x) => Math.exp(x - max) / sum);
  return { p, lse: max + Math.log(sum) };
}

export function attentionForwardReference(s: AttentionShape, qkv: Float32Array): AttentionForward {
  const { B, T, heads, headDim: hd } = s;
  const C = heads * hd;
  const out = new Float32Array(B * T * C);
  const lse = new Float32Array(B * heads * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < T; t++) {
        const row = softmaxRow(s, qkv, b, h, t);
        lse[(b * heads + h) * T + t] = row.lse;
        for (let d = 0; d < hd; d++) {
          let acc = 0;
          for (let j = 0; j <= t; j++) acc += row.p[j]! * qkv[qkvIndex(s, b, j, 2, h, d)]!;
          out[(b * T + t) * C + h * hd + d] = acc;
        }
      }
    }
  }
  return { out, lse };
}

/**
 * dqkv (B·T, 3C) for upstream gradient dout (B·T, C), through the explicit softmax Jacobian:
 * ds_tj = p_tj (dp_tj − Σ_k p_tk dp_tk) with dp_tj = dout_t · v_j.
 */
export function attentionBackwardReference(s: AttentionShape, qkv: Float32Array, dout: Float32Array): Float32Array {
  const { B, T, heads, headDim: hd } = s;
  const C = heads * hd;
  const scale = 1 / Math.sqrt(hd);
  const dqkv = new Float64Array(B * T * 3 * C);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < T; t++) {
        const { p } = softmaxRow(s, qkv, b, h, t);
        const dp = new Float64Array(t + 1);
        for (let j = 0; j <= t; j++) {
          for (let d = 0; d < hd; d++) dp[j]! += dout[(b * T + t) * C + h * hd + d]! * qkv[qkvIndex(s, b, j, 2, h, d)]!;
        }
        let pdp = 0;
        for (let j = 0; j <= t; j++) pdp += p[j]! * dp[j]!;
        for (let j = 0; j <= t; j++) {
          const ds = p[j]! * (dp[j]! - pdp) * scale;
          for (let d = 0; d < hd; d++) {
            dqkv[qkvIndex(s, b, t, 0, h, d)]! += ds * qkv[qkvIndex(s, b, j, 1, h, d)]!;
            dqkv[qkvIndex(s, b, j, 1, h, d)]! += ds * qkv[qkvIndex(s, b, t, 0, h, d)]!;
            dqkv[qkvIndex(s, b, j, 2, h, d)]! += p[j]! * dout[(b * T + t) * C + h * hd + d]!;
          }
        }
      }
    }
  }
  return Float32Array.from(dqkv);
}
