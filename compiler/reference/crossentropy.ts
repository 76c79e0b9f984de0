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
