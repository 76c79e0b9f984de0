// CPU references for the small element-wise kernels of compiler/kernels/elementwise.ts.
import { applyActivation, applyActivationGrad } from '../kernels/activation.js';

export function geluReference(h: Float32Array): Float32Array {
  return h.map((x) => applyActivation('gelu', x));
}

/** d · gelu'(h), the derivative of GPT-2's tanh GELU. */
export function geluBackwardReference(h: Float32Array, d: Float32Array): Float32Array {
  return d.map((g, i) => g * applyActivationGrad('gelu', h[i]!));
}

/** db[n] + Σ_m dy[m, n]. */
export function biasGradReference(rows: number, cols: number, dy: Float32Array, db: Float32Array): Float32Array {
  const out = Float64Array.from(db);
  for (let m = 0; m < rows; m++) for (let n = 0; n < cols; n++) out[n]! += dy[m * cols + n]!;
  return Float32Array.from(out);
}
