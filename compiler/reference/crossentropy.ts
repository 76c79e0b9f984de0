// CPU reference for fused softmax + cross-entropy (forward and backward), in f64 arithmetic.

/** Targets equal to this contribute no loss and no gradient. */
export const IGNORE_INDEX = 0xffffffff;

export interface CrossEntropyForward {
  /** Per-row loss; 0 for ignored rows. */
  losses: Float32Array;
  /** Mean over non-ignored rows (0 if all are ignored). */
  mean: number;
  /** Number of non-ignored rows. */
  count: number;
}

function rowStats(logits: Float32Array, base: number, V: number): { max: number; sum: number } {
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[base + i]!);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[base + i]! - max);
  return { max, sum };
}

export function crossEntropyForwardReference(N: number, V: number, logits: Float32Array, targets: Uint32Array): CrossEntropyForward {
  const losses = new Float32Array(N);
  let total = 0;
  let count = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (t === IGNORE_INDEX) continue;
    const { max, sum } = rowStats(logits, n * V, V);
    const l = Math.log(sum) + max - logits[n * V + t]!;
    losses[n] = l;
    total += l;
    count++;
  }
  return { losses, mean: count ? total / count : 0, count };
}

/** dlogits = (softmax - onehot(target)) * scale for non-ignored rows, 0 for ignored rows. */
export function crossEntropyBackwardReference(N: number, V: number, logits: Float32Array, targets: Uint32Array, scale: number): Float32Array {
  const d = new Float32Array(N * V);
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (t === IGNORE_INDEX) continue;
    const { max, sum } = rowStats(logits, n * V, V);
    for (let i = 0; i < V; i++) d[n * V + i] = (Math.exp(logits[n * V + i]! - max) / sum - (i === t ? 1 : 0)) * scale;
  }
  return d;
}

export interface LinearCrossEntropy extends CrossEntropyForward {
  /** dL/dx (N×C) and dL/dW (V×C) of the mean loss times gradScale. */
  dx: Float32Array;
  dW: Float32Array;
}

/**
 * The tied LM head and cross-entropy in one, unchunked, in f64: logits = x·Wᵀ (x N×C, W V×C), the
 * mean loss over non-ignored rows, and the gradients of gradScale × that mean. The reference for
 * the chunked head of graph/lm-head.ts.
 */
export function linearCrossEntropyReference(N: number, C: number, V: number, x: Float32Array, W: Float32Array, targets: Uint32Array, gradScale: number): LinearCrossEntropy {
  const losses = new Float32Array(N);
  const dx = new Float64Array(N * C);
  const dW = new Float64Array(V * C);
  const count = targets.reduce((a, t) => a + (t === IGNORE_INDEX ? 0 : 1), 0);
  const scale = gradScale / Math.max(1, count);
  const row = new Float64Array(V);
  let total = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (t === IGNORE_INDEX) continue;
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += x[n * C + c]! * W[v * C + c]!;
      row[v] = s;
      max = Math.max(max, s);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(row[v]! - max);
    const l = Math.log(sum) + max - row[t]!;
    losses[n] = l;
    total += l;
    for (let v = 0; v < V; v++) {
      const d = (Math.exp(row[v]! - max) / sum - (v === t ? 1 : 0)) * scale;
      for (let c = 0; c < C; c++) {
        dx[n * C + c] += d * W[v * C + c]!;
        dW[v * C + c] += d * x[n * C + c]!;
      }
    }
  }
  return { losses, mean: count ? total / count : 0, count, dx: Float32Array.from(dx), dW: Float32Array.from(dW) };
}
