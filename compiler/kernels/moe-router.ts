import { mix32 as mix32Host } from '../reference/dropout.js';
import { mix32Wgsl } from './dropout.js';
import { type MoeRouterShape, routingRows, STAT } from '../reference/moe.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { wgslKernel } from './wgsl-kernel.js';

export type { MoeRouterShape } from '../reference/moe.js';

const u = (x: number) => `${x}u`;
/** An f32 literal (WGSL needs a decimal point or exponent). */
const f = (x: number) => Math.fround(x).toExponential();



function checkRouting(name: string, s: MoeRouterShape): void {
  checkDims(name, { tokens: s.tokens, experts: s.experts, top: s.top, rep: s.rep });
  if (s.top > s.experts) throw new Error(`${name}: top ${s.top} > experts ${s.experts}`);
  if (s.tokens % s.rep !== 0) throw new Error(`${name}: ${s.tokens} tokens are not whole routing rows of ${s.rep}`);
}

/**
 * Router forward, one invocation per token: the routing row's logits (row n / rep), the gate scores
 * (softmax or sigmoid), top-k by logit (ties to the lower expert), optional renormalisation.
 * Random mode draws K distinct experts from a hash of (rng.seed, rng.step, salt, assignment), the
 * dropout kernels' counter-based hash; label mode takes experts (label + k) mod E of the token's
 * sequence label, k < K. Random and label gates are 1/K.
 * With `sampled` (GShard), training draws the choices after the first in proportion to their scores.
 * Bindings: logits (read; mode logits) | rng (uniform; random) | labels (read; label), [rng
 * (uniform; sampled)], sel (write, N·K u32), gate (write, N·K).
 */
export function moeRouterForwardKernel(name: string, s: MoeRouterShape, wg = 64): RowKernel {
  checkRouting(name, s);
  const { tokens: N, experts: E, top: K } = s;
  const sampled = s.mode === 'logits' && s.sampled === true && K > 1;
  const decls = [
    s.mode === 'logits' ? 'var<storage, read> logits: array<f32>;' : s.mode === 'random' ? 'var<uniform> rng: Rng;' : 'var<storage, read> labels: array<u32>;',
    ...(sampled ? ['var<uniform> rng: Rng;'] : []),
    'var<storage, read_write> sel: array<u32>;',
    'var<storage, read_write> gate: array<f32>;',
  ];
  const usesRng = s.mode === 'random' || sampled;
  const score = (e: string) => (s.score === 'softmax' ? `exp(l[${e}] - m) / z` : `1.0 / (1.0 + exp(-l[${e}]))`);
  let body: string;
  if (s.mode === 'logits') {
    body = `
  let r = n / ${u(s.rep)};
  var l: array<f32, ${E}>;
  var taken: array<u32, ${E}>;
  var m = -3.0e38;
  for (var e = 0u; e < ${u(E)}; e++) { l[e] = logits[r * ${u(E)} + e]; m = max(m, l[e]); taken[e] = 0u; }
  var tot = 0.0;
  ${s.score === 'softmax' ? `var z = 0.0;
  for (var e = 0u; e < ${u(E)}; e++) { z += exp(l[e] - m); }` : ''}
  var g: array<f32, ${K}>;
  for (var k = 0u; k < ${u(K)}; k++) {
    var best = ${u(E)};
    for (var e = 0u; e < ${u(E)}; e++) {
      if (taken[e] == 0u && (best == ${u(E)} || l[e] > l[best])) { best = e; }
    }
    ${sampled ? `// GShard: while training, choices after the first are sampled in proportion to their scores,
    // one draw per routing row (tokens sharing a row share the draw).
    if (k > 0u && rng.train != 0u) {
      let key = mix32(mix32(rng.seed ^ ${u(mix32Host(s.salt >>> 0))}) ^ rng.step);
      var rest = 0.0;
      for (var e = 0u; e < ${u(E)}; e++) { if (taken[e] == 0u) { rest += ${score('e')}; } }
      var left = f32(mix32(mix32((r * ${u(K)} + k) ^ key) + key) >> 8u) / 16777216.0 * rest;
      for (var e = 0u; e < ${u(E)}; e++) {
        if (taken[e] == 0u) {
          best = e;
          left -= ${score('e')};
          if (left < 0.0) { break; }
        }
      }
    }` : ''}
    taken[best] = 1u;
    sel[n * ${u(K)} + k] = best;
    g[k] = ${score('best')};
    tot += g[k];
  }
  for (var k = 0u; k < ${u(K)}; k++) { gate[n * ${u(K)} + k] = ${s.normalize ? 'g[k] / tot' : 'g[k]'}; }`;
  } else if (s.mode === 'random') {
    body = `
  let key = mix32(mix32(rng.seed ^ ${u(mix32Host(s.salt >>> 0))}) ^ rng.step);
  var taken: array<u32, ${E}>;
  for (var e = 0u; e < ${u(E)}; e++) { taken[e] = 0u; }
  for (var k = 0u; k < ${u(K)}; k++) {
    let a = n * ${u(K)} + k;
    var r = mix32(mix32(a ^ key) + key) % (${u(E)} - k);
    var pick = 0u;
    for (var e = 0u; e < ${u(E)}; e++) {
      if (taken[e] == 0u) {
        if (r == 0u) { pick = e; break; }
        r -= 1u;
      }
    }
    taken[pick] = 1u;
    sel[a] = pick;
    gate[a] = ${f(1 / K)};
  }`;
  } else {
    body = `
  let label = labels[n / ${u(s.seqLen)}];
  for (var k = 0u; k < ${u(K)}; k++) {
    sel[n * ${u(K)} + k] = (label + k) % ${u(E)};
    gate[n * ${u(K)} + k] = ${f(1 / K)};
  }`;
  }
  const wgsl = `
${usesRng ? 'struct Rng { seed: u32, step: u32, train: u32, pad: u32 }' : ''}
${decls.map((d, i) => `@group(0) @binding(${i}) ${d}`).join('\n')}
${usesRng ? mix32Wgsl : ''}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= ${u(N)}) { return; }
${body}
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: N * E * (K + 6), bytes: 4 * (N * E / s.rep + 2 * N * K), workgroups: [ceilDiv(N, wg), 1, 1] });
}

/**
 * Router backward, one invocation per routing row: dL/dlogits from the gate gradients of its `rep`
 * tokens (the renormalisation's and the score function's Jacobians), plus the Switch balance loss
 * (weight `balance`; f_i from the stats' counts, constant; P_i the mean score, differentiable) and
 * the z-loss mean(lse²) (weight `zloss`). Weights include the 1/accumulate loss scale.
 * Bindings: logits, sel, dgate, stats (read), dlogits (write, R×E).
 */
export function moeRouterBackwardKernel(name: string, s: MoeRouterShape & { balance: number; zloss: number }, wg = 64): RowKernel {
  checkRouting(name, s);
  if (s.mode !== 'logits') throw new Error(`${name}: only a logits router has a backward pass`);
  const { tokens: N, experts: E, top: K, rep } = s;
  const R = routingRows(s);
  const NK = N * K;
  const wgsl = `
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> sel: array<u32>;
@group(0) @binding(2) var<storage, read> dgate: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= ${u(R)}) { return; }
  var l: array<f32, ${E}>;
  var p: array<f32, ${E}>;
  var sc: array<f32, ${E}>;
  var dsc: array<f32, ${E}>;
  var m = -3.0e38;
  for (var e = 0u; e < ${u(E)}; e++) { l[e] = logits[r * ${u(E)} + e]; m = max(m, l[e]); }
  var z = 0.0;
  for (var e = 0u; e < ${u(E)}; e++) { p[e] = exp(l[e] - m); z += p[e]; }
  let lse = m + log(z);
  for (var e = 0u; e < ${u(E)}; e++) {
    p[e] = p[e] / z;
    sc[e] = ${s.score === 'softmax' ? 'p[e]' : '1.0 / (1.0 + exp(-l[e]))'};
    // Balance loss: d(λ·E·Σ f_i·P_i)/d score[r, e] = λ·E·f_e / R.
    dsc[e] = ${f((s.balance * E) / (NK * R))} * stats[${u(STAT.counts)} + e];
  }
  // Gate gradients, summed over the tokens sharing this routing row (they share its choice).
  var dg: array<f32, ${K}>;
  var chosen: array<u32, ${K}>;
  var tot = 0.0;
  for (var k = 0u; k < ${u(K)}; k++) {
    chosen[k] = sel[r * ${u(rep * K)} + k];
    var acc = 0.0;
    for (var t = 0u; t < ${u(rep)}; t++) { acc += dgate[(r * ${u(rep)} + t) * ${u(K)} + k]; }
    dg[k] = acc;
    tot += sc[chosen[k]];
  }
  ${s.normalize ? `var dot = 0.0;
  for (var k = 0u; k < ${u(K)}; k++) { dot += dg[k] * sc[chosen[k]] / tot; }
  for (var k = 0u; k < ${u(K)}; k++) { dsc[chosen[k]] += (dg[k] - dot) / tot; }` : `for (var k = 0u; k < ${u(K)}; k++) { dsc[chosen[k]] += dg[k]; }`}
  ${s.score === 'softmax' ? `var dot2 = 0.0;
  for (var e = 0u; e < ${u(E)}; e++) { dot2 += sc[e] * dsc[e]; }` : ''}
  for (var e = 0u; e < ${u(E)}; e++) {
    let d = ${s.score === 'softmax' ? 'sc[e] * (dsc[e] - dot2)' : 'dsc[e] * sc[e] * (1.0 - sc[e])'};
    // z-loss: d(ζ·mean_r lse_r²)/dl = ζ·2·lse·softmax / R.
    dlogits[r * ${u(E)} + e] = d + ${f((2 * s.zloss) / R)} * lse * p[e];
  }
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: R * E * 12 + N * K, bytes: 4 * (2 * R * E + 2 * N * K), workgroups: [ceilDiv(R, wg), 1, 1] });
}

/**
 * Adds a layer's weighted auxiliary losses to the training loss: acc[0] += (λ·balance + ζ·z)·scale.
 * Bindings: stats (read), acc (read_write).
 */
export function moeAuxLossKernel(name: string, balance: number, zloss: number, scale: number): RowKernel {
  const wgsl = `
@group(0) @binding(0) var<storage, read> stats: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@compute @workgroup_size(1, 1, 1)
fn main() {
  acc[0] += (${f(balance)} * stats[${u(STAT.balance)}] + ${f(zloss)} * stats[${u(STAT.z)}]) * ${f(scale)};
}
`;
  return wgslKernel(name, wgsl, [1, 1, 1], { flops: 4, bytes: 16, workgroups: [1, 1, 1] });
}

export interface PoolShape {
  tokens: number;
  /** Tokens per sequence. */
  seqLen: number;
  width: number;
  /** Pool the first `prefix` tokens of each sequence (seqLen: all of them). */
  prefix: number;
}

/** pooled[b, c] = mean_{t < prefix} x[b·T + t, c]. Bindings: x (read), pooled (write, B×C). */
export function moePoolForwardKernel(name: string, s: PoolShape, wg = 64): RowKernel {
  const { tokens: N, seqLen: T, width: C, prefix: P } = s;
  checkDims(name, { N, T, C, P });
  const B = N / T;
  const wgsl = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> pooled: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${u(B * C)}) { return; }
  let b = i / ${u(C)};
  let c = i % ${u(C)};
  var acc = 0.0;
  for (var t = 0u; t < ${u(P)}; t++) { acc += x[(b * ${u(T)} + t) * ${u(C)} + c]; }
  pooled[i] = acc / ${f(P)};
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: B * C * P, bytes: 4 * (B * C * (P + 1)), workgroups: [ceilDiv(B * C, wg), 1, 1] });
}

/** dx[b·T + t, c] += dpooled[b, c] / prefix for t < prefix. Bindings: dpooled (read), dx (read_write). */
export function moePoolBackwardKernel(name: string, s: PoolShape, wg = 64): RowKernel {
  const { tokens: N, seqLen: T, width: C, prefix: P } = s;
  checkDims(name, { N, T, C, P });
  const wgsl = `
@group(0) @binding(0) var<storage, read> dpooled: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${u(N * C)}) { return; }
  let n = i / ${u(C)};
  if (n % ${u(T)} >= ${u(P)}) { return; }
  dx[i] += dpooled[(n / ${u(T)}) * ${u(C)} + i % ${u(C)}] / ${f(P)};
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: N * C, bytes: 12 * N * C, workgroups: [ceilDiv(N * C, wg), 1, 1] });
}

/**
 * Noisy top-k: while training (rng.train != 0) adds noise to every router logit in place. Gaussian:
 * noise·z, z a standard normal from Box-Muller on two hashed uniforms per logit (the dropout hash of
 * (rng.seed, rng.step, salt, index)); uniform: noise·u, u in [0, 1) from the first of those two
 * hashes (the same hash inputs), so U(0, noise). The gates, statistics and backward then all see
 * the noisy logits, and d(noisy)/d(logits) = 1, so the backward needs nothing else. One invocation
 * per logit, so a routing row shared by many tokens is perturbed once.
 * Bindings: logits (read_write, R×E), rng (uniform).
 */
export function moeRouterNoiseKernel(name: string, count: number, noise: number, salt: number, dist: 'gaussian' | 'uniform' = 'gaussian', wg = 64): RowKernel {
  checkDims(name, { count, wg });
  const wgsl = `
struct Rng { seed: u32, step: u32, train: u32, pad: u32 }
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<uniform> rng: Rng;
${routerNoiseWgsl(dist, noise)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${u(count)} || rng.train == 0u) { return; }
  logits[i] += router_noise(i, ${noiseKeyWgsl(salt)});
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: (dist === 'uniform' ? 12 : 40) * count, bytes: 8 * count, workgroups: [ceilDiv(count, wg), 1, 1] });
}

/** The noise stream's key for one step, from the `rng` uniform block and a salt baked in. */
export const noiseKeyWgsl = (salt: number) => `mix32(mix32(rng.seed ^ ${u(mix32Host(salt >>> 0))}) ^ rng.step)`;

/**
 * WGSL `router_noise(i, key)`: the noise added to logit i (see moeRouterNoiseKernel), with mix32.
 * Shared by every kernel that perturbs router logits, so their draws agree with routerNoiseReference.
 */
export function routerNoiseWgsl(dist: 'gaussian' | 'uniform', noise: number): string {
  const draw = dist === 'uniform'
    ? `// A 24-bit uniform in [0, 1).
  return ${f(noise)} * (f32(h1 >> 8u) / 16777216.0);`
    : `let h2 = mix32(mix32((2u * i + 1u) ^ key) + key);
  // 24-bit uniforms; u1 in (0, 1] keeps the log finite.
  let u1 = (f32(h1 >> 8u) + 1.0) / 16777216.0;
  let u2 = f32(h2 >> 8u) / 16777216.0;
  return ${f(noise)} * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);`;
  return `${mix32Wgsl}
fn router_noise(i: u32, key: u32) -> f32 {
  let h1 = mix32(mix32((2u * i) ^ key) + key);
  ${draw}
}`;
}

export interface CosineShape {
  /** Routing rows R. */
  rows: number;
  /** Projection dimension D. */
  dim: number;
  experts: number;
}

const cosineDecls = `
@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read> emb: array<f32>;
@group(0) @binding(2) var<storage, read> logScale: array<f32>;`;

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
  const wgsl = `${cosineDecls}
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= ${u(R)}) { return; }
${cosineRow(s)}
  for (var e = 0u; e < ${u(E)}; e++) { logits[r * ${u(E)} + e] = cs[e] * k; }
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: 4 * R * D * E, bytes: 4 * (R * D + D * E + R * E), workgroups: [ceilDiv(R, wg), 1, 1] });
}

/**
 * Cosine router backward, dP: dP_r = Σ_e g_re·k·(ê_e − cos_re·u_r)/|p_r| (u_r = p_r/|p_r|),
 * one invocation per routing row. Bindings: P, emb, logScale, dlogits (read), dP (write, R×D).
 */
export function moeCosineBackwardPKernel(name: string, s: CosineShape, wg = 64): RowKernel {
  const { rows: R, dim: D, experts: E } = s;
  checkDims(name, { R, D, E, wg });
  const wgsl = `${cosineDecls}
@group(0) @binding(3) var<storage, read> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> dP: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= ${u(R)}) { return; }
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
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: 6 * R * D * E, bytes: 4 * (2 * R * D + D * E + R * E), workgroups: [ceilDiv(R, wg), 1, 1] });
}

/**
 * Cosine router backward, expert embeddings: demb_e += Σ_r g_re·k·(u_r − cos_re·ê_e)/|emb_e|, one
 * invocation per (d, e), rows summed in order. Bindings: P, emb, logScale, dlogits (read), demb
 * (read_write, D×E).
 */
export function moeCosineBackwardEmbKernel(name: string, s: CosineShape, wg = 64): RowKernel {
  const { rows: R, dim: D, experts: E } = s;
  checkDims(name, { R, D, E, wg });
  const wgsl = `${cosineDecls}
@group(0) @binding(3) var<storage, read> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> demb: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${u(D * E)}) { return; }
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
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: 4 * R * D * D * E, bytes: 4 * (R * D + 2 * D * E + R * E), workgroups: [ceilDiv(D * E, wg), 1, 1] });
}

/**
 * Cosine router backward, log inverse temperature: dlogScale += Σ_re g_re·cos_re·k, one workgroup,
 * rows strided over invocations then a fixed tree: deterministic. Bindings: P, emb, logScale,
 * dlogits (read), dscale (read_write, 1).
 */
export function moeCosineBackwardScaleKernel(name: string, s: CosineShape, wg = 64): RowKernel {
  const { rows: R, dim: D, experts: E } = s;
  checkDims(name, { R, D, E, wg });
  const wgsl = `${cosineDecls}
@group(0) @binding(3) var<storage, read> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> dscale: array<f32>;
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
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: 3 * R * D * E, bytes: 4 * (R * D + D * E + R * E), workgroups: [1, 1, 1] });
}
