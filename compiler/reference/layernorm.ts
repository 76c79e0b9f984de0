// CPU reference for the fused residual-add + LayerNorm (forward and backward), in f64 arithmetic.

export interface LayerNormForward {
  /** x + r, saved for the backward pass and as the residual stream. */
  sum: Float32Array;
  out: Float32Array;
  /** Per row: mean, rstd interleaved (stats[2*row], stats[2*row+1]). */
  stats: Float32Array;
}

export function layerNormForwardReference(rows: number, C: number, x: Float32Array, r: Float32Array, w: Float32Array, b: Float32Array, eps = 1e-5): LayerNormForward {
  const sum = new Float32Array(rows * C);
  const out = new Float32Array(rows * C);
  const stats = new Float32Array(2 * rows);
  for (let i = 0; i < rows; i++) {
    let m = 0;
    for (let c = 0; c < C; c++) {
      const s = x[i * C + c]! + r[i * C + c]!;
      sum[i * C + c] = s;
      m += s;
    }
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (sum[i * C + c]! - m) ** 2;
    v /= C;
    const rstd = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) out[i * C + c] = (sum[i * C + c]! - m) * rstd * w[c]! + b[c]!;
    stats[2 * i] = m;
    stats[2 * i + 1] = rstd;
  }
  return { sum, out, stats };
}

/** Accumulates (+=) into dres, dw and db, as the GPU kernels do. */
export function layerNormBackwardReference(
  rows: number, C: number, dout: Float32Array, sum: Float32Array, stats: Float32Array, w: Float32Array,
  dres: Float32Array, dw: Float32Array, db: Float32Array,
): void {
  const dwAcc = new Float64Array(C);
  const dbAcc = new Float64Array(C);
  for (let i = 0; i < rows; i++) {
    const m = stats[2 * i]!;
    const rstd = stats[2 * i + 1]!;
    let m1 = 0;
    let m2 = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (sum[i * C + c]! - m) * rstd;
      const dn = dout[i * C + c]! * w[c]!;
      m1 += dn;
      m2 += dn * xhat;
      dwAcc[c]! += dout[i * C + c]! * xhat;
      dbAcc[c]! += dout[i * C + c]!;
    }
    m1 /= C;
    m2 /= C;
    for (let c = 0; c < C; c++) {
      const xhat = (sum[i * C + c]! - m) * rstd;
      const dn = dout[i * C + c]! * w[c]!;
      dres[i * C + c]! += rstd * (dn - m1 - xhat * m2);
    }
  }
  for (let c = 0; c < C; c++) {
    dw[c]! += dwAcc[c]!;
    db[c]! += dbAcc[c]!;
  }
}
