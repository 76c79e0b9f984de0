// The cosine router (X-MoE): logits from a low-dimensional projection, and their backward.
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, perElementMain, read, readWrite } from './definition.js';
import { u, f } from './wgsl.js';

export interface CosineShape {
  /** Routing rows R. */
  rows: number;
  /** Projection dimension D. */
  dim: number;
  experts: number;
}

// Every cosine kernel reads P, emb and logScale first; the backward kernels then dlogits.
const cosineIn = [read('P'), read('emb'), read('logScale')];
const forwardBindings = () => [...cosineIn, readWrite('logits')];
const backwardBindings = (out: string) => () => [...cosineIn, read('dlogits'), readWrite(out)];
const dpBindings = backwardBindings('dP');
const dembBindings = backwardBindings('demb');
const dscaleBindings = backwardBindings('dscale');

/** WGSL computing, for routing row r, |p_r| (pn), each expert embedding's norm (en[e]) and cos[e]. */
function cosineRow(s: CosineShape): string {
  const { dim: D, experts: E } = s;
  return `
  var pn = 0.0;
  for (var d = 0u; d < ${u(D)}; d++) { let v = P[r * ${u(D)} + d]; pn += v * v; }
  pn = max(sqrt(pn), 1e-6);
  var en: array<f32, ${E}>;
  var cs: array<f32, ${E}>;
  for (var e = 0u; e < ${u(E)}; e++) {
    var nn = 0.0;
    var dot = 0.0;
    for (var d = 0u; d < ${u(D)}; d++) {
      let w = emb[d * ${u(E)} + e];
      nn += w * w;
      dot += w * P[r * ${u(D)} + d];
    }
    en[e] = max(sqrt(nn), 1e-6);
    cs[e] = dot / (pn * en[e]);
  }
  let k = exp(logScale[0]);`;
}

/**
 * Cosine router logits (X-MoE): logits[r, e] = cos(p_r, emb_e) · exp(logScale), p = x·Wp the
 * low-dimensional projection (a matmul before this kernel), emb (D×E) the expert embeddings and
 * exp(logScale) the learned inverse temperature. One invocation per routing row.
 * Bindings: P (R×D), emb (D×E), logScale (1) (read), logits (write, R×E).
 */
export function moeCosineForwardKernel(name: string, s: CosineShape, wg = 64): RowKernel {
  const { rows: R, dim: D, experts: E } = s;
  checkDims(name, { R, D, E, wg });
  const b = forwardBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'r', R)}
${cosineRow(s)}
  for (var e = 0u; e < ${u(E)}; e++) { logits[r * ${u(E)} + e] = cs[e] * k; }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 4 * R * D * E, bytes: 4 * (R * D + D * E + R * E), workgroups: [ceilDiv(R, wg), 1, 1] });
}

/**
 * Cosine router backward, dP: dP_r = Σ_e g_re·k·(ê_e − cos_re·u_r)/|p_r| (u_r = p_r/|p_r|),
 * one invocation per routing row. Bindings: P, emb, logScale, dlogits (read), dP (write, R×D).
 */
export function moeCosineBackwardPKernel(name: string, s: CosineShape, wg = 64): RowKernel {
  const { rows: R, dim: D, experts: E } = s;
  checkDims(name, { R, D, E, wg });
  const b = dpBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'r', R)}
${cosineRow(s)}
  for (var d = 0u; d < ${u(D)}; d++) {
    let ud = P[r * ${u(D)} + d] / pn;
    var acc = 0.0;
    for (var e = 0u; e < ${u(E)}; e++) {
      acc += dlogits[r * ${u(E)} + e] * (emb[d * ${u(E)} + e] / en[e] - cs[e] * ud);
    }
    dP[r * ${u(D)} + d] = acc * k / pn;
  }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 6 * R * D * E, bytes: 4 * (2 * R * D + D * E + R * E), workgroups: [ceilDiv(R, wg), 1, 1] });
}

/**
 * Cosine router backward, expert embeddings: demb_e += Σ_r g_re·k·(u_r − cos_re·ê_e)/|emb_e|, one
 * invocation per (d, e), rows summed in order. Bindings: P, emb, logScale, dlogits (read), demb
 * (read_write, D×E).
 */
export function moeCosineBackwardEmbKernel(name: string, s: CosineShape, wg = 64): RowKernel {
  const { rows: R, dim: D, experts: E } = s;
  checkDims(name, { R, D, E, wg });
  const b = dembBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'i', D * E)}
  let d = i / ${u(E)};
  let e = i % ${u(E)};
  var nn = 0.0;
  for (var j = 0u; j < ${u(D)}; j++) { let w = emb[j * ${u(E)} + e]; nn += w * w; }
  let en = max(sqrt(nn), 1e-6);
  let k = exp(logScale[0]);
  var acc = 0.0;
  for (var r = 0u; r < ${u(R)}; r++) {
    var pn = 0.0;
    var dot = 0.0;
    for (var j = 0u; j < ${u(D)}; j++) {
      let v = P[r * ${u(D)} + j];
      pn += v * v;
      dot += v * emb[j * ${u(E)} + e];
    }
    pn = max(sqrt(pn), 1e-6);
    let c = dot / (pn * en);
    acc += dlogits[r * ${u(E)} + e] * (P[r * ${u(D)} + d] / pn - c * emb[i] / en);
  }
  demb[i] += acc * k / en;
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 4 * R * D * D * E, bytes: 4 * (R * D + 2 * D * E + R * E), workgroups: [ceilDiv(D * E, wg), 1, 1] });
}

/**
 * Cosine router backward, log inverse temperature: dlogScale += Σ_re g_re·cos_re·k, one workgroup,
 * rows strided over invocations then a fixed tree: deterministic. Bindings: P, emb, logScale,
 * dlogits (read), dscale (read_write, 1).
 */
export function moeCosineBackwardScaleKernel(name: string, s: CosineShape, wg = 64): RowKernel {
  const { rows: R, dim: D, experts: E } = s;
  checkDims(name, { R, D, E, wg });
  const b = dscaleBindings();
  const wgsl = `
${declarations(b)}
var<workgroup> part: array<f32, ${wg}>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var sum = 0.0;
  for (var r = lid.x; r < ${u(R)}; r += ${u(wg)}) {
${cosineRow(s)}
    for (var e = 0u; e < ${u(E)}; e++) { sum += dlogits[r * ${u(E)} + e] * cs[e] * k; }
  }
  part[lid.x] = sum;
  workgroupBarrier();
  for (var h = ${u(wg / 2)}; h > 0u; h = h >> 1u) {
    if (lid.x < h) { part[lid.x] += part[lid.x + h]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { dscale[0] += part[0]; }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 3 * R * D * E, bytes: 4 * (R * D + D * E + R * E), workgroups: [1, 1, 1] });
}

const cosine = (kind: string, bindings: () => ReturnType<typeof forwardBindings>, portable: (n: string, s: CosineShape) => RowKernel) => defineKernel(kind, (_s: CosineShape) => bindings(), { portable });
export const moeCosineForward = cosine('moe_cosine_fwd', forwardBindings, (n, s) => moeCosineForwardKernel(n, s));
export const moeCosineBackwardP = cosine('moe_cosine_dp', dpBindings, (n, s) => moeCosineBackwardPKernel(n, s));
export const moeCosineBackwardEmb = cosine('moe_cosine_demb', dembBindings, (n, s) => moeCosineBackwardEmbKernel(n, s));
export const moeCosineBackwardScale = cosine('moe_cosine_dscale', dscaleBindings, (n, s) => moeCosineBackwardScaleKernel(n, s));
