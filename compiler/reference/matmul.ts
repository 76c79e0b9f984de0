import { applyActivation, applyActivationGrad, type Activation } from '../kernels/activation.js';

export interface MatmulShape {
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** The contracted dimension. */
  k: number;
  batch?: number;
  /** A is stored K×M (so C = Aᵀ·B). */
  transA?: boolean;
  /** B is stored N×K (so C = A·Bᵀ). */
  transB?: boolean;
  /** B is one matrix shared by every batch entry (weights). */
  broadcastB?: boolean;
  bias?: boolean;
  activation?: Activation;
  /** C += result instead of C = result (gradient accumulation). */
  accumulate?: boolean;
  /** Also write the value before the activation to a `pre` output (the forward of a fused activation). */
  savePre?: boolean;
  /** Multiply the result by act'(H) elementwise, H an extra input shaped like C (a fused activation backward). */
  actGrad?: Exclude<Activation, 'none'>;
  /** Read the operands in f16 (train.precision f16): see compiler/kernels/matmul-f16.ts. */
  f16?: MatmulF16;
}

/** How a matmul reads an operand in f16: 'stored' from an f16 buffer, 'round' from f32 rounded at load. */
export type F16Operand = 'stored' | 'round';
export interface MatmulF16 {
  a: F16Operand;
  b: F16Operand;
}

/**
 * Plain TypeScript matmul, the reference the GPU kernel is tested against.
 * Accumulates in f64, so it is at least as accurate as any f32 kernel. With `savePre` the values
 * before the activation go to `extra.pre`; with `actGrad` the result is multiplied by act'(extra.h).
 */
export function matmulReference(
  s: MatmulShape,
  a: Float32Array,
  b: Float32Array,
  bias?: Float32Array,
  cIn?: Float32Array,
  extra: { pre?: Float32Array; h?: Float32Array } = {},
): Float32Array {
  const { m, n, k } = s;
  const batch = s.batch ?? 1;
  const c = new Float32Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = z * m * k;
    const bo = s.broadcastB ? 0 : z * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) {
          const av = s.transA ? a[ao + p * m + i]! : a[ao + i * k + p]!;
          const bv = s.transB ? b[bo + j * k + p]! : b[bo + p * n + j]!;
          acc += av * bv;
        }
        if (s.bias && bias) acc += bias[j]!;
        const ci = z * m * n + i * n + j;
        if (s.savePre && extra.pre) extra.pre[ci] = acc;
        let v = applyActivation(s.activation ?? 'none', acc);
        if (s.actGrad) v *= applyActivationGrad(s.actGrad, extra.h![ci]!);
        if (s.accumulate && cIn) v += cIn[ci]!;
        c[ci] = v;
      }
    }
  }
  return c;
}
