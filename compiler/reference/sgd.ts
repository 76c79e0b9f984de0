// CPU reference for plain SGD with decoupled weight decay and optional global-norm clipping.
import { clipFactor } from './gradnorm.js';

/** p ← p − lr·(clip·g + wd·p) over params[offset, offset+count); `sumSquares` is Σ g² of all gradients. */
export function sgdReference(params: Float32Array, grads: Float32Array, lr: number, weightDecay: number, maxNorm = 0, sumSquares = 0, offset = 0, count = params.length - offset): void {
  const c = clipFactor(sumSquares, maxNorm);
  for (let i = offset; i < offset + count; i++) params[i] = params[i]! - lr * (c * grads[i]! + weightDecay * params[i]!);
}
