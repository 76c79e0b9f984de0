// CPU references for the small element-wise kernels of compiler/kernels/elementwise.ts.
import { applyActivation } from '../kernels/activation.js';

export function geluReference(h: Float32Array): Float32Array {
  return h.map((x) => applyActivation('gelu', x));
}

/** d · gelu'(h), the derivative of GPT-2's tanh GELU. */
export function geluBackwardReference(h: Float32Array, d: Float32Array): Float32Array {
  const k = Math.sqrt(2 / Math.PI);
  return d.map((g, i) => {
    const x = h[i]!;
    const t = Math.tanh(k * (x + 0.044715 * x ** 3));
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x));
  });
}

/** db[n] + Σ_m dy[m, n]. */
export function biasGradReference(rows: number, cols: number, dy: Float32Array, db: Float32Array): Float32Array {
  const out = Float64Array.from(db);
  for (let m = 0; m < rows; m++) for (let n = 0; n < cols; n++) out[n]! += dy[m * cols + n]!;
  return Float32Array.from(out);
}
