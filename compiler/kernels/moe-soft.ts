// Soft MoE kernels (Puigcerver et al. 2023): the softmaxes, the slot dispatch, the combine, their
// backward passes and the layer's statistics. The notation, the slot-row layout and the CPU
// references are in compiler/reference/moe-soft.ts; the logits X·Φ and Φ's gradients are plain
// matmuls, and the experts are the sparse MoE's grouped matmuls over the slot rows (offsets e·B·S).
// Every kernel is one invocation per output element (or per row / column), summing in a fixed
// order: no atomics, deterministic.
import { softDims, type SoftShape } from '../reference/moe-soft.js';
import { STAT, statsLength } from '../reference/moe.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, invocationMain, read, readWrite } from './definition.js';
import { u } from './wgsl.js';

export type { SoftShape } from '../reference/moe-soft.js';

const MAX_GROUPS = 65535;

/**
 * Checks the shape; returns the workgroup grid for `threads` invocations and the WGSL of the flat
 * invocation index i. Past 65535 workgroups the grid wraps into y (surplus invocations exit on the
 * kernels' bounds checks), so no batch size runs out of grid.
 */
function grid(name: string, s: SoftShape, threads: number, wg: number): { workgroups: [number, number, number]; index: string } {
  checkDims(name, { seqs: s.seqs, seqLen: s.seqLen, width: s.width, experts: s.experts, slots: s.slots, wg });
  const groups = ceilDiv(threads, wg);
  const gy = ceilDiv(groups, MAX_GROUPS);
  const gx = ceilDiv(groups, gy);
  return { workgroups: [gx, gy, 1], index: `gid.y * ${u(gx * wg)} + gid.x` };
}

/** WGSL: the slot row of slot j of sequence b (reference slotRow). */
const slotRowWgsl = (s: SoftShape) => `
fn slot_row(b: u32, j: u32) -> u32 {
  return (j / ${u(s.slots)}) * ${u(s.seqs * s.slots)} + b * ${u(s.slots)} + j % ${u(s.slots)};
}`;

const moeSoftWeightsBindings = () => [read('logits'), readWrite('D'), readWrite('W'), readWrite('offsets', 'array<u32>')];
const moeSoftDispatchBindings = () => [read('x'), read('D'), readWrite('Xs')];
const moeSoftCombineBindings = () => [read('Ys'), read('W'), readWrite('out')];
const moeSoftStatsBindings = () => [read('W'), readWrite('stats')];
const moeSoftCombineBackwardBindings = () => [read('dout'), read('Ys'), read('W'), readWrite('dYs'), readWrite('dlogits')];
const moeSoftDispatchBackwardBindings = () => [read('x'), read('D'), read('dXs'), readWrite('dx'), readWrite('dlogits')];

/**
 * The two softmaxes of the logits (N×M): invocations i < N write W's row i (softmax over the M
 * slots), invocations N + b·M + j write D's column (b, j) (softmax over sequence b's T tokens);
 * invocation 0 also writes the experts' slot-row offsets e·B·S (E+1, u32).
 * Bindings: logits (read), D, W (write, N×M), offsets (write).
 */
export function moeSoftWeightsKernel(name: string, s: SoftShape, wg = 64): RowKernel {
  const { M, N } = softDims(s);
  const T = s.seqLen;
  const cols = s.seqs * M;
  const { workgroups, index } = grid(name, s, N + cols, wg);
  const b = moeSoftWeightsBindings();
  const wgsl = `
${declarations(b)}
${invocationMain(wg, 'i', index)}
  if (i == 0u) {
    for (var e = 0u; e <= ${u(s.experts)}; e++) { offsets[e] = e * ${u(s.seqs * s.slots)}; }
  }
  if (i < ${u(N)}) {
    let base = i * ${u(M)};
    var m = -3.0e38;
    for (var j = 0u; j < ${u(M)}; j++) { m = max(m, logits[base + j]); }
    var z = 0.0;
    for (var j = 0u; j < ${u(M)}; j++) { z += exp(logits[base + j] - m); }
    for (var j = 0u; j < ${u(M)}; j++) { W[base + j] = exp(logits[base + j] - m) / z; }
    return;
  }
  if (i >= ${u(N + cols)}) { return; }
  let q = i - ${u(N)};
  let b = q / ${u(M)};
  let j = q % ${u(M)};
  let base = b * ${u(T * M)} + j;
  var m = -3.0e38;
  for (var t = 0u; t < ${u(T)}; t++) { m = max(m, logits[base + t * ${u(M)}]); }
  var z = 0.0;
  for (var t = 0u; t < ${u(T)}; t++) { z += exp(logits[base + t * ${u(M)}] - m); }
  for (var t = 0u; t < ${u(T)}; t++) { D[base + t * ${u(M)}] = exp(logits[base + t * ${u(M)}] - m) / z; }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 12 * N * M, bytes: 4 * 4 * N * M, workgroups });
}

/**
 * Slot inputs: Xs[slot_row(b, j), c] = Σ_t D[b·T + t, j] · x[b·T + t, c], one invocation per
 * element of Xs (B·M × C), tokens in order. Bindings: x, D (read), Xs (write).
 */
export function moeSoftDispatchKernel(name: string, s: SoftShape, wg = 64): RowKernel {
  const { M, rows } = softDims(s);
  const { seqLen: T, width: C, slots: S } = s;
  const { workgroups, index } = grid(name, s, rows * C, wg);
  const b = moeSoftDispatchBindings();
  const wgsl = `
${declarations(b)}
${invocationMain(wg, 'i', index)}
  if (i >= ${u(rows * C)}) { return; }
  let r = i / ${u(C)};
  let c = i % ${u(C)};
  let e = r / ${u(s.seqs * S)};
  let b = (r % ${u(s.seqs * S)}) / ${u(S)};
  let j = e * ${u(S)} + r % ${u(S)};
  var acc = 0.0;
  for (var t = 0u; t < ${u(T)}; t++) {
    let n = b * ${u(T)} + t;
    acc += D[n * ${u(M)} + j] * x[n * ${u(C)} + c];
  }
  Xs[i] = acc;
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 2 * rows * C * T, bytes: 4 * (rows * C * (2 * T + 1)), workgroups });
}

/**
 * Combine: out[n, c] = Σ_j W[n, j] · Ys[slot_row(b, j), c] (b = n / T), one invocation per element
 * of out (N×C), slots in order. Bindings: Ys, W (read), out (write).
 */
export function moeSoftCombineKernel(name: string, s: SoftShape, wg = 64): RowKernel {
  const { M, N } = softDims(s);
  const { seqLen: T, width: C } = s;
  const { workgroups, index } = grid(name, s, N * C, wg);
  const b = moeSoftCombineBindings();
  const wgsl = `
${declarations(b)}
${slotRowWgsl(s)}
${invocationMain(wg, 'i', index)}
  if (i >= ${u(N * C)}) { return; }
  let n = i / ${u(C)};
  let c = i % ${u(C)};
  let b = n / ${u(T)};
  var acc = 0.0;
  for (var j = 0u; j < ${u(M)}; j++) { acc += W[n * ${u(M)} + j] * Ys[slot_row(b, j) * ${u(C)} + c]; }
  out[i] = acc;
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 2 * N * C * M, bytes: 4 * (N * C * (2 * M + 1)), workgroups });
}

/**
 * The layer's statistics in the sparse layers' STAT layout (reference softStatsReference):
 * invocation e < E sums expert e's combine weight over tokens (counts, and counts / N as the mean
 * score), invocation E the mean per-token entropy of the combine weights per expert, and writes
 * balance, z and dropped as 0. Bindings: W (read), stats (write).
 */
export function moeSoftStatsKernel(name: string, s: SoftShape, wg = 64): RowKernel {
  const { M, N } = softDims(s);
  const { experts: E, slots: S } = s;
  const { workgroups, index } = grid(name, s, E + 1, wg);
  const b = moeSoftStatsBindings();
  const wgsl = `
${declarations(b)}
${invocationMain(wg, 'e', index)}
  if (e < ${u(E)}) {
    var acc = 0.0;
    for (var n = 0u; n < ${u(N)}; n++) {
      for (var k = 0u; k < ${u(S)}; k++) { acc += W[n * ${u(M)} + e * ${u(S)} + k]; }
    }
    stats[${u(STAT.counts)} + e] = acc;
    stats[${u(STAT.counts + E)} + e] = acc / ${Math.fround(N).toExponential()};
    return;
  }
  if (e != ${u(E)}) { return; }
  var ent = 0.0;
  for (var n = 0u; n < ${u(N)}; n++) {
    for (var x = 0u; x < ${u(E)}; x++) {
      var p = 0.0;
      for (var k = 0u; k < ${u(S)}; k++) { p += W[n * ${u(M)} + x * ${u(S)} + k]; }
      if (p > 0.0) { ent -= p * log(p); }
    }
  }
  stats[${u(STAT.balance)}] = 0.0;
  stats[${u(STAT.z)}] = 0.0;
  stats[${u(STAT.dropped)}] = 0.0;
  stats[${u(STAT.entropy)}] = ent / ${Math.fround(N).toExponential()};
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 4 * N * M, bytes: 4 * (N * M + statsLength(E)), workgroups });
}

/**
 * Combine backward (reference softCombineBackwardReference). Invocations i < B·M·C write
 * dYs[i] = Σ_t W[b·T + t, j] · dout[b·T + t, c] for slot row r = i / C; invocations B·M·C + n
 * write token n's row of dlogits (the combine softmax's gradient): a first pass stores
 * g[j] = dout[n] · Ys[slot_row(b, j)] there and sums Σ_j W·g, a second rewrites it as W·(g − Σ).
 * Bindings: dout, Ys, W (read), dYs, dlogits (write).
 */
export function moeSoftCombineBackwardKernel(name: string, s: SoftShape, wg = 64): RowKernel {
  const { M, N, rows } = softDims(s);
  const { seqLen: T, width: C, slots: S } = s;
  const { workgroups, index } = grid(name, s, rows * C + N, wg);
  const b = moeSoftCombineBackwardBindings();
  const wgsl = `
${declarations(b)}
${slotRowWgsl(s)}
${invocationMain(wg, 'i', index)}
  if (i < ${u(rows * C)}) {
    let r = i / ${u(C)};
    let c = i % ${u(C)};
    let e = r / ${u(s.seqs * S)};
    let b = (r % ${u(s.seqs * S)}) / ${u(S)};
    let j = e * ${u(S)} + r % ${u(S)};
    var acc = 0.0;
    for (var t = 0u; t < ${u(T)}; t++) {
      let n = b * ${u(T)} + t;
      acc += W[n * ${u(M)} + j] * dout[n * ${u(C)} + c];
    }
    dYs[i] = acc;
    return;
  }
  if (i >= ${u(rows * C + N)}) { return; }
  let n = i - ${u(rows * C)};
  let b = n / ${u(T)};
  var dot = 0.0;
  for (var j = 0u; j < ${u(M)}; j++) {
    let r = slot_row(b, j);
    var g = 0.0;
    for (var c = 0u; c < ${u(C)}; c++) { g += dout[n * ${u(C)} + c] * Ys[r * ${u(C)} + c]; }
    dlogits[n * ${u(M)} + j] = g;
    dot += g * W[n * ${u(M)} + j];
  }
  for (var j = 0u; j < ${u(M)}; j++) {
    let w = W[n * ${u(M)} + j];
    dlogits[n * ${u(M)} + j] = w * (dlogits[n * ${u(M)} + j] - dot);
  }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 4 * N * M * C, bytes: 4 * (3 * N * C * M + 2 * rows * C), workgroups });
}

/**
 * Dispatch backward (reference softDispatchBackwardReference). Invocations i < N·C write
 * dx[i] = Σ_j D[n, j] · dXs[slot_row(b, j), c]; invocations N·C + b·M + j add column (b, j) of
 * the dispatch softmax's gradient to dlogits: h[t] = dXs[slot_row(b, j)] · x[b·T + t] is summed
 * once for Σ_t D·h and recomputed to write D·(h − Σ) (no per-invocation array of T).
 * Bindings: x, D, dXs (read), dx (write), dlogits (read_write).
 */
export function moeSoftDispatchBackwardKernel(name: string, s: SoftShape, wg = 64): RowKernel {
  const { M, N } = softDims(s);
  const { seqLen: T, width: C } = s;
  const cols = s.seqs * M;
  const { workgroups, index } = grid(name, s, N * C + cols, wg);
  const b = moeSoftDispatchBackwardBindings();
  const wgsl = `
${declarations(b)}
${slotRowWgsl(s)}
${invocationMain(wg, 'i', index)}
  if (i < ${u(N * C)}) {
    let n = i / ${u(C)};
    let c = i % ${u(C)};
    let b = n / ${u(T)};
    var acc = 0.0;
    for (var j = 0u; j < ${u(M)}; j++) { acc += D[n * ${u(M)} + j] * dXs[slot_row(b, j) * ${u(C)} + c]; }
    dx[i] = acc;
    return;
  }
  if (i >= ${u(N * C + cols)}) { return; }
  let q = i - ${u(N * C)};
  let b = q / ${u(M)};
  let j = q % ${u(M)};
  let r = slot_row(b, j) * ${u(C)};
  var dot = 0.0;
  for (var t = 0u; t < ${u(T)}; t++) {
    let n = b * ${u(T)} + t;
    var h = 0.0;
    for (var c = 0u; c < ${u(C)}; c++) { h += dXs[r + c] * x[n * ${u(C)} + c]; }
    dot += h * D[n * ${u(M)} + j];
  }
  for (var t = 0u; t < ${u(T)}; t++) {
    let n = b * ${u(T)} + t;
    var h = 0.0;
    for (var c = 0u; c < ${u(C)}; c++) { h += dXs[r + c] * x[n * ${u(C)} + c]; }
    dlogits[n * ${u(M)} + j] += D[n * ${u(M)} + j] * (h - dot);
  }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 6 * N * M * C, bytes: 4 * (4 * N * C * M), workgroups });
}

export const moeSoftWeights = defineKernel('moe_soft_weights', (_s: SoftShape) => moeSoftWeightsBindings(), { portable: (n, s) => moeSoftWeightsKernel(n, s) });
export const moeSoftDispatch = defineKernel('moe_soft_dispatch', (_s: SoftShape) => moeSoftDispatchBindings(), { portable: (n, s) => moeSoftDispatchKernel(n, s) });
export const moeSoftCombine = defineKernel('moe_soft_combine', (_s: SoftShape) => moeSoftCombineBindings(), { portable: (n, s) => moeSoftCombineKernel(n, s) });
export const moeSoftStats = defineKernel('moe_soft_stats', (_s: SoftShape) => moeSoftStatsBindings(), { portable: (n, s) => moeSoftStatsKernel(n, s) });
export const moeSoftCombineBackward = defineKernel('moe_soft_combine_bwd', (_s: SoftShape) => moeSoftCombineBackwardBindings(), { portable: (n, s) => moeSoftCombineBackwardKernel(n, s) });
export const moeSoftDispatchBackward = defineKernel('moe_soft_dispatch_bwd', (_s: SoftShape) => moeSoftDispatchBackwardBindings(), { portable: (n, s) => moeSoftDispatchBackwardKernel(n, s) });
