// CPU reference for global gradient-norm clipping.

/** Added to the norm before dividing, so an all-zero gradient does not divide by zero. */
export const CLIP_EPS = 1e-6;

/** Σ g² over the whole buffer, in f64. */
export function gradSumSquaresReference(grads: Float32Array): number {
  let s = 0;
  for (let i = 0; i < grads.length; i++) s += grads[i]! * grads[i]!;
  return s;
}

/** The factor every gradient is multiplied by: min(1, maxNorm / (‖g‖ + 1e-6)); 1 when maxNorm is 0 (no clipping). */
export function clipFactor(sumSquares: number, maxNorm: number): number {
  return maxNorm > 0 ? Math.min(1, maxNorm / (Math.sqrt(sumSquares) + CLIP_EPS)) : 1;
}
