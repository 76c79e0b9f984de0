// CPU reference for AdamW (decoupled weight decay, bias-corrected moments), as in PyTorch / llm.c.

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  /** Weight decay for this dispatch; the compiler dispatches decayed (matrices) and undecayed (biases, norms) ranges separately. */
  weightDecay: number;
}

export const defaultAdamW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/**
 * The per-step uniform block read by the AdamW kernel: { lr, 1 - beta1^t, 1 - beta2^t, 0 }, with t
 * the 1-based step. 16 bytes; the host writes it before each replay of the recorded step program.
 */
export function adamwUniforms(step: number, lr: number, cfg: Pick<AdamWConfig, 'beta1' | 'beta2'>): Float32Array {
  if (!Number.isInteger(step) || step < 1) throw new Error(`adamw step ${step} must be a positive integer (1-based)`);
  return new Float32Array([lr, 1 - cfg.beta1 ** step, 1 - cfg.beta2 ** step, 0]);
}

/** One AdamW step over params[offset, offset+count), updating params, m and v in place. */
export function adamwReference(
  params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array, step: number, lr: number, cfg: AdamWConfig,
  offset = 0, count = params.length - offset,
): void {
  const bc1 = 1 - cfg.beta1 ** step;
  const bc2 = 1 - cfg.beta2 ** step;
  for (let i = offset; i < offset + count; i++) {
    const g = grads[i]!;
    const mi = cfg.beta1 * m[i]! + (1 - cfg.beta1) * g;
    const vi = cfg.beta2 * v[i]! + (1 - cfg.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const p = params[i]!;
    params[i] = p - lr * (mi / bc1 / (Math.sqrt(vi / bc2) + cfg.eps) + cfg.weightDecay * p);
  }
}
