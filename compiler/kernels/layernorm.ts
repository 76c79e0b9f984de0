import { ceilDiv, checkDims, reduceBody, rowWorkgroupMain } from './reduce.js';
import { boundKernel, declarations, defineKernel, perElementMain, read, readWrite } from './definition.js';
import { u, fDec as f, perRowGrid, rowForm, type RowKernel } from './wgsl.js';

export type { RowKernel } from './wgsl.js';

// Bindings; the per-invocation forms read rows as vec4 where C allows (`t`), the statistics stay f32.
const lnForwardBindings = (t = 'array<f32>') => [read('x', t), read('r', t), read('w', t), read('b', t), readWrite('sum', t), readWrite('out', t), readWrite('stats')];
const lnBackwardBindings = (t = 'array<f32>') => [read('dout', t), read('sum', t), read('stats'), read('w', t), readWrite('dres', t)];
/** dw and db packed into one binding `dwb` where the compiler passes a dbOffset. */
const lnParamGradBindings = (packed: boolean) => [read('dout'), read('sum'), read('stats'), ...(packed ? [readWrite('dwb')] : [readWrite('dw'), readWrite('db')])];

export interface LayerNormShape {
  rows: number;
  /** Channels per row. */
  C: number;
  eps?: number;
  /** Invocations per workgroup for the per-row kernels (power of two, default 64). */
  wg?: number;
  /**
   * 'workgroup' (default): one workgroup per row with tree reductions in workgroup memory, for long
   * rows on real GPUs. 'invocation': one invocation per row looping over it, no workgroup memory or
   * barriers; rows map to SIMD lanes, which is much faster on llvmpipe for short rows.
   */
  perRow?: 'invocation' | 'workgroup';
}


/**
 * Fused residual add + LayerNorm: sum = x + r; out = (sum - mean) * rstd * w + b, one workgroup per
 * row. Bindings: x, r, w, b (read), sum, out, stats (write); stats holds mean, rstd per row.
 */
export function layerNormForwardKernel(name: string, s: LayerNormShape): RowKernel {
  const { rows, C } = s;
  if (s.perRow === 'invocation') return layerNormForwardPerInvocation(name, s);
  const wg = s.wg ?? 64;
  const eps = s.eps ?? 1e-5;
  checkDims(name, { rows, C, wg });
  const bind = lnForwardBindings();
  const wgsl = `
${rowWorkgroupMain(declarations(bind), wg, ['a'])}
  let base = row * ${u(C)};
  var acc = 0.0;
  for (var c = lid.x; c < ${u(C)}; c += ${u(wg)}) {
    let v = x[base + c] + r[base + c];
    sum[base + c] = v;
    acc += v;
  }
${reduceBody(wg, ['a'], ['acc'], 'sum').replaceAll('a_all', 'tot')}
  let mean = tot / ${f(C)};
  // Each invocation reads back only the elements it wrote itself.
  var sq = 0.0;
  for (var c = lid.x; c < ${u(C)}; c += ${u(wg)}) {
    let d = sum[base + c] - mean;
    sq += d * d;
  }
${reduceBody(wg, ['a'], ['sq'], 'sum').replaceAll('a_all', 'sqTot')}
  let rstd = inverseSqrt(sqTot / ${f(C)} + ${f(eps)});
  for (var c = lid.x; c < ${u(C)}; c += ${u(wg)}) {
    out[base + c] = (sum[base + c] - mean) * rstd * w[c] + b[c];
  }
  if (lid.x == 0u) {
    stats[2u * row] = mean;
    stats[2u * row + 1u] = rstd;
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: 8 * rows * C,
    bytes: 4 * (4 * rows * C + 2 * C + 2 * rows),
    workgroups: [rows, 1, 1],
  });
}

/**
 * LayerNorm backward for the input: dres += rstd * (dn - mean(dn) - xhat * mean(dn * xhat)) with
 * dn = dout * w, one workgroup per row. Bindings: dout, sum, stats, w (read), dres (read_write, +=).
 */
export function layerNormBackwardKernel(name: string, s: LayerNormShape): RowKernel {
  const { rows, C } = s;
  if (s.perRow === 'invocation') return layerNormBackwardPerInvocation(name, s);
  const wg = s.wg ?? 64;
  checkDims(name, { rows, C, wg });
  const bind = lnBackwardBindings();
  const wgsl = `
${rowWorkgroupMain(declarations(bind), wg, ['a', 'b'])}
  let base = row * ${u(C)};
  let mean = stats[2u * row];
  let rstd = stats[2u * row + 1u];
  var s1 = 0.0;
  var s2 = 0.0;
  for (var c = lid.x; c < ${u(C)}; c += ${u(wg)}) {
    let xhat = (sum[base + c] - mean) * rstd;
    let dn = dout[base + c] * w[c];
    s1 += dn;
    s2 += dn * xhat;
  }
${reduceBody(wg, ['a', 'b'], ['s1', 's2'], 'sum')}
  let m1 = a_all / ${f(C)};
  let m2 = b_all / ${f(C)};
  for (var c = lid.x; c < ${u(C)}; c += ${u(wg)}) {
    let xhat = (sum[base + c] - mean) * rstd;
    let dn = dout[base + c] * w[c];
    dres[base + c] += rstd * (dn - m1 - xhat * m2);
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: 12 * rows * C,
    bytes: 4 * (4 * rows * C + C + 2 * rows),
    workgroups: [rows, 1, 1],
  });
}

/**
 * LayerNorm backward for the affine parameters, reducing over rows without atomics: one invocation
 * per channel, dw[c] += Σ dout·xhat, db[c] += Σ dout. Bindings: dout, sum, stats (read), dw, db (+=).
 * With `dbOffset`, dw and db are one binding `dwb` (db at dwb[dbOffset + c]): WebGPU forbids two
 * writable bindings into one allocation, and the compiler keeps all gradients in one.
 */
export function layerNormParamGradKernel(name: string, s: LayerNormShape, wg = 64, dbOffset?: number): RowKernel {
  const { rows, C } = s;
  checkDims(name, { rows, C, wg });
  const packed = dbOffset !== undefined;
  if (packed && !(Number.isInteger(dbOffset) && dbOffset >= C)) throw new Error(`${name}: dbOffset=${dbOffset} must be an integer ≥ C=${C}`);
  const stores = packed ? `dwb[c] += gw;\n  dwb[${u(dbOffset!)} + c] += gb;` : 'dw[c] += gw;\n  db[c] += gb;';
  const bind = lnParamGradBindings(packed);
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= ${u(C)}) { return; }
  var gw = 0.0;
  var gb = 0.0;
  for (var row = 0u; row < ${u(rows)}; row++) {
    let g = dout[row * ${u(C)} + c];
    let xhat = (sum[row * ${u(C)} + c] - stats[2u * row]) * stats[2u * row + 1u];
    gw += g * xhat;
    gb += g;
  }
  ${stores}
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: 4 * rows * C,
    bytes: 4 * (2 * rows * C + 2 * rows + 4 * C),
    workgroups: [ceilDiv(C, wg), 1, 1],
  });
}

// ---- One invocation per row (perRow: 'invocation') ----

/** Element type and horizontal sum for rows of C channels: vec4 when C % 4 == 0. */
function rowType(C: number): { vec: boolean; n: number; T: string; hsum: (v: string) => string } {
  const vec = C % 4 === 0;
  return {
    vec,
    n: vec ? C / 4 : C,
    T: vec ? 'vec4<f32>' : 'f32',
    hsum: (v) => (vec ? `((${v}.x + ${v}.y) + (${v}.z + ${v}.w))` : v),
  };
}

function layerNormForwardPerInvocation(name: string, s: LayerNormShape): RowKernel {
  const { rows, C } = s;
  const wg = s.wg ?? 64;
  const eps = s.eps ?? 1e-5;
  checkDims(name, { rows, C, wg });
  const { n, T, hsum } = rowType(C);
  const g = perRowGrid(rows, wg);
  const bind = lnForwardBindings(`array<${T}>`);
  const wgsl = `
${declarations(bind)}
${perElementMain(wg, 'row', rows, g.row)}
  let base = row * ${u(n)};
  var acc = ${T}(0.0);
  for (var c = 0u; c < ${u(n)}; c++) {
    let v = x[base + c] + r[base + c];
    sum[base + c] = v;
    acc += v;
  }
  let mean = ${hsum('acc')} / ${f(C)};
  var sq = ${T}(0.0);
  for (var c = 0u; c < ${u(n)}; c++) {
    let d = sum[base + c] - mean;
    sq += d * d;
  }
  let rstd = inverseSqrt(${hsum('sq')} / ${f(C)} + ${f(eps)});
  for (var c = 0u; c < ${u(n)}; c++) {
    out[base + c] = (sum[base + c] - mean) * rstd * w[c] + b[c];
  }
  stats[2u * row] = mean;
  stats[2u * row + 1u] = rstd;
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: 8 * rows * C,
    bytes: 4 * (4 * rows * C + 2 * C + 2 * rows),
    workgroups: g.workgroups,
  });
}

function layerNormBackwardPerInvocation(name: string, s: LayerNormShape): RowKernel {
  const { rows, C } = s;
  const wg = s.wg ?? 64;
  checkDims(name, { rows, C, wg });
  const { n, T, hsum } = rowType(C);
  const g = perRowGrid(rows, wg);
  const bind = lnBackwardBindings(`array<${T}>`);
  const wgsl = `
${declarations(bind)}
${perElementMain(wg, 'row', rows, g.row)}
  let base = row * ${u(n)};
  let mean = stats[2u * row];
  let rstd = stats[2u * row + 1u];
  var s1 = ${T}(0.0);
  var s2 = ${T}(0.0);
  for (var c = 0u; c < ${u(n)}; c++) {
    let xhat = (sum[base + c] - mean) * rstd;
    let dn = dout[base + c] * w[c];
    s1 += dn;
    s2 += dn * xhat;
  }
  let m1 = ${hsum('s1')} / ${f(C)};
  let m2 = ${hsum('s2')} / ${f(C)};
  for (var c = 0u; c < ${u(n)}; c++) {
    let xhat = (sum[base + c] - mean) * rstd;
    let dn = dout[base + c] * w[c];
    dres[base + c] += rstd * (dn - m1 - xhat * m2);
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: 12 * rows * C,
    bytes: 4 * (4 * rows * C + C + 2 * rows),
    workgroups: g.workgroups,
  });
}

export const layerNormForward = defineKernel('ln_fwd', (_s: LayerNormShape) => lnForwardBindings(), { portable: (n, s) => layerNormForwardKernel(n, rowForm(s, s.C)) });
export const layerNormBackward = defineKernel('ln_bwd', (_s: LayerNormShape) => lnBackwardBindings(), { portable: (n, s) => layerNormBackwardKernel(n, rowForm(s, s.C)) });
export const layerNormParamGrad = defineKernel('ln_dwb', (_s: LayerNormShape, _wg: number, dbOffset?: number) => lnParamGradBindings(dbOffset !== undefined), {
  portable: (n, s, wg, dbOffset) => layerNormParamGradKernel(n, s, wg, dbOffset),
});
