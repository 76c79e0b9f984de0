// Kernels of the patch model of Chen et al. 2022 (the synthetic cluster task); the math and its
// CPU reference are in compiler/reference/clusters.ts. The model is tiny (a few thousand weights)
// and routes whole samples, so each kernel is one pass with one invocation per sample or per
// weight: no gathered copies, and per-sample results packed into one `state` row
// [sel, gate, f, out, loss, lse, probs(M)] so that no kernel needs more than 7 bindings.
import { STAT, statsLength } from '../reference/moe.js';
import { type PatchModelShape, PATCH_STATE, patchStateWidth } from '../reference/clusters.js';
import { noiseKeyWgsl, routerNoiseWgsl } from './moe-router.js';
import type { RowKernel } from './layernorm.js';
import { actWgsl } from './moe-grouped.js';
import { checkDims } from './reduce.js';
import { type Binding, boundKernel, declarations, defineKernel, read, readWrite, uniform } from './definition.js';
import { entry, grid, rngStruct, u, fExp as f } from './wgsl.js';

export { type PatchModelShape } from '../reference/clusters.js';

// Bindings: theta only when routed, rng only when the router is noisy (noise implies a router).
const forwardBindings = (s: PatchModelShape): Binding[] => [
  read('x'), read('W'), read('y'), readWrite('state'), readWrite('pre'),
  ...(s.routed ? [read('theta')] : []),
  ...(s.routed && s.noise > 0 ? [uniform('rng', 'Rng')] : []),
];
const lossBindings = (s: PatchModelShape) => [read('state'), read('y'), readWrite('train_loss'), ...(s.routed ? [readWrite('stats'), readWrite('dh')] : [])];
const dwPartialBindings = () => [read('x'), read('pre'), read('state'), read('y'), readWrite('partial')];
const dwBindings = () => [read('partial'), readWrite('dW')];
const dthetaBindings = () => [read('x'), read('dh'), readWrite('dtheta')];
const evalBindings = () => [read('state'), read('y'), read('cluster', 'array<u32>'), readWrite('acc')];

const helpers = `${actWgsl}
fn act_linear(x: f32) -> f32 { return x; }
fn grad_linear(x: f32) -> f32 { return 1.0; }
// 1 / (1 + e^-z) without overflowing e^-z.
fn sigm(z: f32) -> f32 {
  if (z >= 0.0) { return 1.0 / (1.0 + exp(-z)); }
  let e = exp(z);
  return e / (1.0 + e);
}`;

function check(name: string, s: PatchModelShape): void {
  checkDims(name, { batch: s.batch, patches: s.patches, dim: s.dim, experts: s.experts, filters: s.filters, clusters: s.clusters });
  if (!s.routed && s.experts !== 1) throw new Error(`${name}: a model without a router has one expert, not ${s.experts}`);
}

/**
 * Forward pass, one invocation per sample: router logits from the patch sum, noisy argmax while
 * training, softmax gate, the chosen expert's filters on every patch (pre-activations kept for the
 * backward), output and logistic loss. Bindings: x, W, y (read), state, pre (write), then theta
 * (read) when routed and rng (uniform) when noisy.
 */
export function patchForwardKernel(name: string, s: PatchModelShape, wg = 64): RowKernel {
  check(name, s);
  const { batch: B, patches: P, dim: D, experts: M, filters: J } = s;
  const S = patchStateWidth(s);
  const noisy = s.routed && s.noise > 0;
  const g = grid(B, wg);
  const route = s.routed ? `
  var h: array<f32, ${M}>;
  for (var d = 0u; d < ${u(D)}; d++) {
    var xs = 0.0;
    for (var p = 0u; p < ${u(P)}; p++) { xs += x[xo + p * ${u(D)} + d]; }
    for (var m = 0u; m < ${u(M)}; m++) { h[m] += xs * theta[d * ${u(M)} + m]; }
  }
  var mx = h[0];
  for (var m = 1u; m < ${u(M)}; m++) { mx = max(mx, h[m]); }
  var sum = 0.0;
  for (var m = 0u; m < ${u(M)}; m++) { sum += exp(h[m] - mx); }
  lse = mx + log(sum);${noisy ? `
  let key = ${noiseKeyWgsl(s.salt)};` : ''}
  var best = -3.0e38;
  for (var m = 0u; m < ${u(M)}; m++) {
    var v = h[m];${noisy ? `
    if (rng.train != 0u) { v += router_noise(b * ${u(M)} + m, key); }` : ''}
    if (v > best) { best = v; sel = m; }
    state[so + ${u(PATCH_STATE.probs)} + m] = exp(h[m] - mx) / sum;
  }
  gate = exp(h[sel] - mx) / sum;` : `
  state[so + ${u(PATCH_STATE.probs)}] = 1.0;`;
  const bind = forwardBindings(s);
  const wgsl = `
${noisy ? `${rngStruct}\n` : ''}${declarations(bind)}
${helpers}
${noisy ? routerNoiseWgsl(s.noiseDist, s.noise) : ''}
${entry(wg)}
  let b = ${g.idx};
  if (b >= ${u(B)}) { return; }
  let xo = b * ${u(P * D)};
  let so = b * ${u(S)};
  var sel = 0u;
  var gate = 1.0;
  var lse = 0.0;${route}
  var fsum = 0.0;
  let wo = sel * ${u(J * D)};
  for (var p = 0u; p < ${u(P)}; p++) {
    for (var j = 0u; j < ${u(J)}; j++) {
      var a = 0.0;
      for (var d = 0u; d < ${u(D)}; d++) { a += W[wo + j * ${u(D)} + d] * x[xo + p * ${u(D)} + d]; }
      pre[(b * ${u(P)} + p) * ${u(J)} + j] = a;
      fsum += act_${s.act}(a);
    }
  }
  let out = gate * fsum;
  let z = -y[b] * out;
  state[so + ${u(PATCH_STATE.sel)}] = f32(sel);
  state[so + ${u(PATCH_STATE.gate)}] = gate;
  state[so + ${u(PATCH_STATE.f)}] = fsum;
  state[so + ${u(PATCH_STATE.out)}] = out;
  state[so + ${u(PATCH_STATE.loss)}] = max(z, 0.0) + log(1.0 + exp(-abs(z)));
  state[so + ${u(PATCH_STATE.lse)}] = lse;
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: B * (2 * P * D * J + (s.routed ? P * D + 2 * D * M : 0)), bytes: 4 * (B * P * D + M * J * D + B * P * J + B * S), workgroups: g.workgroups });
}

/**
 * The batch's loss and router statistics, in one invocation (B × M work, small): writes
 * train_loss = mean logistic loss + λ_b·balance + λ_z·z, and when routed the STAT block and
 * d(train_loss)/d(logits) (B×M) for the router's backward. Bindings: state, y (read),
 * train_loss (write), then stats, dh (write) when routed.
 */
export function patchLossKernel(name: string, s: PatchModelShape): RowKernel {
  check(name, s);
  const { batch: B, experts: M } = s;
  const S = patchStateWidth(s);
  const at = (b: string, k: number) => `state[${b} * ${u(S)} + ${u(k)}]`;
  const routed = `
  var counts: array<f32, ${M}>;
  var P: array<f32, ${M}>;
  var z = 0.0;
  var ent = 0.0;
  for (var b = 0u; b < ${u(B)}; b++) {
    counts[u32(${at('b', PATCH_STATE.sel)})] += 1.0;
    let l = ${at('b', PATCH_STATE.lse)};
    z += l * l;
    for (var m = 0u; m < ${u(M)}; m++) {
      let p = state[b * ${u(S)} + ${u(PATCH_STATE.probs)} + m];
      P[m] += p;
      if (p > 0.0) { ent -= p * log(p); }
    }
  }
  var bal = 0.0;
  for (var m = 0u; m < ${u(M)}; m++) {
    P[m] = P[m] / ${f(B)};
    stats[${u(STAT.counts)} + m] = counts[m];
    stats[${u(STAT.counts + M)} + m] = P[m];
    bal += counts[m] / ${f(B)} * P[m];
  }
  bal *= ${f(M)};
  z /= ${f(B)};
  stats[${u(STAT.balance)}] = bal;
  stats[${u(STAT.z)}] = z;
  stats[${u(STAT.dropped)}] = 0.0;
  stats[${u(STAT.entropy)}] = ent / ${f(B)};
  train_loss[0] = task + ${f(s.balance)} * bal + ${f(s.zloss)} * z;
  for (var b = 0u; b < ${u(B)}; b++) {
    let yb = y[b];
    let dF = -yb * sigm(-yb * ${at('b', PATCH_STATE.out)}) / ${f(B)};
    let sel = u32(${at('b', PATCH_STATE.sel)});
    let through = dF * ${at('b', PATCH_STATE.f)} * ${at('b', PATCH_STATE.gate)};
    let l = ${at('b', PATCH_STATE.lse)};
    var fp = 0.0;
    for (var m = 0u; m < ${u(M)}; m++) { fp += counts[m] / ${f(B)} * state[b * ${u(S)} + ${u(PATCH_STATE.probs)} + m]; }
    for (var m = 0u; m < ${u(M)}; m++) {
      let p = state[b * ${u(S)} + ${u(PATCH_STATE.probs)} + m];
      var gm = through * (select(0.0, 1.0, m == sel) - p);
      gm += ${f((s.balance * M) / B)} * p * (counts[m] / ${f(B)} - fp);
      gm += ${f((2 * s.zloss) / B)} * l * p;
      dh[b * ${u(M)} + m] = gm;
    }
  }`;
  const bind = lossBindings(s);
  const wgsl = `
${declarations(bind)}
${helpers}
@compute @workgroup_size(1, 1, 1)
fn main() {
  var task = 0.0;
  for (var b = 0u; b < ${u(B)}; b++) { task += ${at('b', PATCH_STATE.loss)}; }
  task /= ${f(B)};${s.routed ? routed : '\n  train_loss[0] = task;'}
}
`;
  return boundKernel(name, bind, wgsl, [1, 1, 1], { flops: 10 * B * M * M, bytes: 4 * B * (S + M), workgroups: [1, 1, 1] });
}

/** Samples per partial sum of the expert weight gradients (see patchWeightGradPartialKernel). */
export const PATCH_DW_CHUNK = 256;
export const patchDwChunks = (s: Pick<PatchModelShape, 'batch'>, chunk = PATCH_DW_CHUNK) => Math.ceil(s.batch / chunk);

/**
 * Expert weight gradients, first pass: one invocation per (chunk c of samples, filter j, input d)
 * accumulates, for every expert m at once (a register per expert),
 *   partial[c, m, j, d] = Σ_{b in c, sel_b = m} dF_b · g_b · Σ_p σ'(pre[b,p,j]) · x[b,p,d],
 * so each sample is read once per (j, d) rather than once per weight of every expert (the former
 * one-invocation-per-weight form tested sel_b for all M·J·D weights: 88% of a full-batch step).
 * Bindings: x, pre, state, y (read), partial (write, chunks × M × J × D).
 */
export function patchWeightGradPartialKernel(name: string, s: PatchModelShape, chunk = PATCH_DW_CHUNK, wg = 64): RowKernel {
  check(name, s);
  const { batch: B, patches: P, dim: D, experts: M, filters: J } = s;
  const S = patchStateWidth(s);
  const C = patchDwChunks(s, chunk);
  const count = C * J * D;
  const g = grid(count, wg);
  const bind = dwPartialBindings();
  const wgsl = `
${declarations(bind)}
${helpers}
${entry(wg)}
  let i = ${g.idx};
  if (i >= ${u(count)}) { return; }
  let d = i % ${u(D)};
  let j = (i / ${u(D)}) % ${u(J)};
  let c = i / ${u(J * D)};
  var acc: array<f32, ${M}>;
  let end = min(${u(B)}, (c + 1u) * ${u(chunk)});
  for (var b = c * ${u(chunk)}; b < end; b++) {
    let so = b * ${u(S)};
    let yb = y[b];
    let dF = -yb * sigm(-yb * state[so + ${u(PATCH_STATE.out)}]) / ${f(B)} * state[so + ${u(PATCH_STATE.gate)}];
    var t = 0.0;
    for (var p = 0u; p < ${u(P)}; p++) {
      t += grad_${s.act}(pre[(b * ${u(P)} + p) * ${u(J)} + j]) * x[(b * ${u(P)} + p) * ${u(D)} + d];
    }
    let m = u32(state[so + ${u(PATCH_STATE.sel)}]);
    acc[m] += dF * t;
  }
  for (var m = 0u; m < ${u(M)}; m++) { partial[(c * ${u(M)} + m) * ${u(J * D)} + j * ${u(D)} + d] = acc[m]; }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: B * P * J * D * 3, bytes: 4 * (B * P * (D + J) * J + C * M * J * D), workgroups: g.workgroups });
}

/** Expert weight gradients, second pass: dW[m,j,d] += Σ_c partial[c,m,j,d]. Bindings: partial (read), dW (read_write). */
export function patchWeightGradReduceKernel(name: string, s: PatchModelShape, chunk = PATCH_DW_CHUNK, wg = 64): RowKernel {
  check(name, s);
  const { experts: M, filters: J, dim: D } = s;
  const C = patchDwChunks(s, chunk);
  const count = M * J * D;
  const g = grid(count, wg);
  const bind = dwBindings();
  const wgsl = `
${declarations(bind)}
${entry(wg)}
  let i = ${g.idx};
  if (i >= ${u(count)}) { return; }
  var acc = 0.0;
  for (var c = 0u; c < ${u(C)}; c++) { acc += partial[c * ${u(count)} + i]; }
  dW[i] += acc;
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: C * count, bytes: 4 * (C + 2) * count, workgroups: g.workgroups });
}

/** Router gradients, one invocation per (d, m): dθ[d,m] += Σ_b dh[b,m] · Σ_p x[b,p,d]. Bindings: x, dh (read), dtheta. */
export function patchRouterGradKernel(name: string, s: PatchModelShape, wg = 64): RowKernel {
  check(name, s);
  const { batch: B, patches: P, dim: D, experts: M } = s;
  const count = D * M;
  const g = grid(count, wg);
  const bind = dthetaBindings();
  const wgsl = `
${declarations(bind)}
${entry(wg)}
  let i = ${g.idx};
  if (i >= ${u(count)}) { return; }
  let d = i / ${u(M)};
  let m = i % ${u(M)};
  var acc = 0.0;
  for (var b = 0u; b < ${u(B)}; b++) {
    var xs = 0.0;
    for (var p = 0u; p < ${u(P)}; p++) { xs += x[(b * ${u(P)} + p) * ${u(D)} + d]; }
    acc += dh[b * ${u(M)} + m] * xs;
  }
  dtheta[i] += acc;
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: count * B * (P + 2), bytes: 4 * (B * P * D + B * M + count), workgroups: g.workgroups });
}

/**
 * Adds one evaluation batch into acc = [Σ loss, samples, correct, clusters × experts dispatch
 * counts]; samples with y = 0 are padding and skipped. One invocation. Bindings: state, y,
 * cluster (read), acc (read_write).
 */
export function patchEvalKernel(name: string, s: PatchModelShape): RowKernel {
  check(name, s);
  const { batch: B, experts: M } = s;
  const S = patchStateWidth(s);
  const bind = evalBindings();
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(1, 1, 1)
fn main() {
  for (var b = 0u; b < ${u(B)}; b++) {
    let yb = y[b];
    if (yb == 0.0) { continue; }
    let so = b * ${u(S)};
    acc[0] += state[so + ${u(PATCH_STATE.loss)}];
    acc[1] += 1.0;
    if (yb * state[so + ${u(PATCH_STATE.out)}] > 0.0) { acc[2] += 1.0; }
    let k = min(cluster[b], ${u(s.clusters - 1)});
    acc[3u + k * ${u(M)} + u32(state[so + ${u(PATCH_STATE.sel)}])] += 1.0;
  }
}
`;
  return boundKernel(name, bind, wgsl, [1, 1, 1], { flops: 5 * B, bytes: 4 * B * (S + 2), workgroups: [1, 1, 1] });
}

export const patchStatsLength = (s: PatchModelShape) => statsLength(s.experts);

export const patchForward = defineKernel('patch_fwd', (s: PatchModelShape) => forwardBindings(s), { portable: (n, s) => patchForwardKernel(n, s) });
export const patchLoss = defineKernel('patch_loss', (s: PatchModelShape) => lossBindings(s), { portable: (n, s) => patchLossKernel(n, s) });
export const patchWeightGradPartial = defineKernel('patch_dw_partial', (_s: PatchModelShape) => dwPartialBindings(), { portable: (n, s) => patchWeightGradPartialKernel(n, s) });
export const patchWeightGrad = defineKernel('patch_dw', (_s: PatchModelShape) => dwBindings(), { portable: (n, s) => patchWeightGradReduceKernel(n, s) });
export const patchRouterGrad = defineKernel('patch_dtheta', (_s: PatchModelShape) => dthetaBindings(), { portable: (n, s) => patchRouterGradKernel(n, s) });
export const patchEval = defineKernel('patch_eval', (_s: PatchModelShape) => evalBindings(), { portable: (n, s) => patchEvalKernel(n, s) });
