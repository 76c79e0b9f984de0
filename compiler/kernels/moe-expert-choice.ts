// Expert-choice routing's kernels (Zhou et al. 2022; compiler/routing/expert-choice.ts): the router
// forward scores every (token, expert) pair, and the dispatch lets each expert keep its top
// `capacity` tokens of every group. The rest of the layer (grouped matmuls, combine, the router
// backward) is token choice's with one assignment per (token, expert), a = n·E + e. References:
// reference/moe-expert-choice.ts.
import { type ExpertChoiceShape, expertSlots } from '../reference/moe-expert-choice.js';
import { GridLimitError } from './grid-limit.js';
import { STAT, statsLength } from '../reference/moe.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { f, u } from './wgsl.js';

export type { ExpertChoiceShape } from '../reference/moe-expert-choice.js';

const routerBindings = () => [read('logits'), readWrite('sel', 'array<u32>'), readWrite('gate')];
const dispatchBindings = () => [read('gate'), readWrite('offsets', 'array<u32>'), readWrite('perm', 'array<u32>'), readWrite('pos', 'array<u32>'), readWrite('kept', 'array<u32>')];
const statsBindings = () => [read('logits'), read('gate'), read('pos', 'array<u32>'), readWrite('stats')];

function checkShape(name: string, s: ExpertChoiceShape): void {
  checkDims(name, { tokens: s.tokens, experts: s.experts, group: s.group, capacity: s.capacity });
  if (s.tokens % s.group !== 0) throw new Error(`${name}: ${s.tokens} tokens are not whole groups of ${s.group}`);
  if (s.capacity > s.group) throw new Error(`${name}: capacity ${s.capacity} > group ${s.group}`);
}

/** One invocation per token: sel[n·E + e] = e, gate[n·E + e] = its softmax or sigmoid score. Bindings: logits (read), sel, gate (write). */
export function moeExpertChoiceRouterKernel(name: string, s: ExpertChoiceShape, wg = 64): RowKernel {
  checkShape(name, s);
  const { tokens: N, experts: E } = s;
  const bind = routerBindings();
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= ${u(N)}) { return; }
  var m = -3.0e38;
  for (var e = 0u; e < ${u(E)}; e++) { m = max(m, logits[n * ${u(E)} + e]); }
  var z = 0.0;
  for (var e = 0u; e < ${u(E)}; e++) { z += exp(logits[n * ${u(E)} + e] - m); }
  for (var e = 0u; e < ${u(E)}; e++) {
    let l = logits[n * ${u(E)} + e];
    sel[n * ${u(E)} + e] = e;
    gate[n * ${u(E)} + e] = ${s.score === 'softmax' ? 'exp(l - m) / z' : '1.0 / (1.0 + exp(-l))'};
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: N * E * 6, bytes: 4 * 3 * N * E, workgroups: [ceilDiv(N, wg), 1, 1] });
}

/**
 * One invocation per assignment a = n·E + e: the rank of n's score among its group's for expert e
 * (higher first, ties to the lower token; deterministic, no atomics). Rank < capacity takes slot
 * e·c + g·capacity + rank (c the expert's slots over all groups), else the assignment is dropped.
 * Every slot is filled (capacity ≤ group). Also writes the kept selections (e, or 0xffffffff) for
 * evaluation. Bindings: gate (read), offsets, perm, pos, kept (write).
 */
export function moeExpertChoiceDispatchKernel(name: string, s: ExpertChoiceShape, wg = 64): RowKernel {
  checkShape(name, s);
  const { tokens: N, experts: E, group: G, capacity: cap } = s;
  const c = expertSlots(s);
  const groups = ceilDiv(N * E, wg);
  if (groups > 65535) throw new GridLimitError(`${name}: ${N} tokens × ${E} experts exceed one dispatch of the expert-choice kernel`);
  const bind = dispatchBindings();
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let a = gid.x;
  if (a <= ${u(E)}) { offsets[a] = a * ${u(c)}; }
  if (a >= ${u(N * E)}) { return; }
  let n = a / ${u(E)};
  let e = a % ${u(E)};
  let g = n / ${u(G)};
  let v = gate[a];
  var rank = 0u;
  for (var m = g * ${u(G)}; m < (g + 1u) * ${u(G)}; m++) {
    let w = gate[m * ${u(E)} + e];
    if (w > v || (w == v && m < n)) { rank++; }
  }
  if (rank < ${u(cap)}) {
    let slot = e * ${u(c)} + g * ${u(cap)} + rank;
    perm[slot] = a;
    pos[a] = slot;
    kept[a] = e;
  } else {
    pos[a] = 0xffffffffu;
    kept[a] = 0xffffffffu;
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: N * E * G * 3, bytes: 4 * (N * E * (G + 3) + E * c), workgroups: [groups, 1, 1] });
}

/**
 * The layer's statistics (STAT) in one workgroup: per expert its c tokens and mean score, the z
 * loss and entropy of the router's softmax, and as `dropped` the fraction of tokens no expert took.
 * Bindings: logits, gate, pos (read), stats (write).
 */
export function moeExpertChoiceStatsKernel(name: string, s: ExpertChoiceShape): RowKernel {
  checkShape(name, s);
  const { tokens: N, experts: E } = s;
  const c = expertSlots(s);
  let W = 64;
  while (W > 1 && W * E > 2048) W /= 2;
  if (W * E > 2048) throw new Error(`${name}: ${E} experts do not fit the statistics kernel's workgroup memory`);
  const bind = statsBindings();
  const wgsl = `
${declarations(bind)}
var<workgroup> part: array<f32, ${W * E}>;
var<workgroup> zpart: array<f32, ${W}>;
var<workgroup> hpart: array<f32, ${W}>;
var<workgroup> upart: array<u32, ${W}>;
@compute @workgroup_size(${W}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  for (var e = 0u; e < ${u(E)}; e++) { part[t * ${u(E)} + e] = 0.0; }
  var zs = 0.0;
  var hs = 0.0;
  var un = 0u;
  for (var n = t; n < ${u(N)}; n += ${u(W)}) {
    var m = -3.0e38;
    for (var e = 0u; e < ${u(E)}; e++) { m = max(m, logits[n * ${u(E)} + e]); }
    var z = 0.0;
    for (var e = 0u; e < ${u(E)}; e++) { z += exp(logits[n * ${u(E)} + e] - m); }
    let lse = m + log(z);
    zs += lse * lse;
    var any = false;
    for (var e = 0u; e < ${u(E)}; e++) {
      let p = exp(logits[n * ${u(E)} + e] - m) / z;
      if (p > 0.0) { hs -= p * log(p); }
      part[t * ${u(E)} + e] += gate[n * ${u(E)} + e];
      if (pos[n * ${u(E)} + e] != 0xffffffffu) { any = true; }
    }
    if (!any) { un += 1u; }
  }
  zpart[t] = zs;
  hpart[t] = hs;
  upart[t] = un;
  workgroupBarrier();
  if (t == 0u) {
    var bal = 0.0;
    var z = 0.0;
    var h = 0.0;
    var unrouted = 0u;
    for (var w = 0u; w < ${u(W)}; w++) { z += zpart[w]; h += hpart[w]; unrouted += upart[w]; }
    for (var e = 0u; e < ${u(E)}; e++) {
      var ps = 0.0;
      for (var w = 0u; w < ${u(W)}; w++) { ps += part[w * ${u(E)} + e]; }
      stats[${u(STAT.counts)} + e] = ${f(c)};
      stats[${u(STAT.counts + E)} + e] = ps / ${N}.0;
      bal += ${f(1 / E)} * (ps / ${N}.0);
    }
    stats[${u(STAT.balance)}] = ${E}.0 * bal;
    stats[${u(STAT.z)}] = z / ${N}.0;
    stats[${u(STAT.dropped)}] = f32(unrouted) / ${N}.0;
    stats[${u(STAT.entropy)}] = h / ${N}.0;
  }
}
`;
  return boundKernel(name, bind, wgsl, [W, 1, 1], { flops: N * E * 8, bytes: 4 * (3 * N * E + statsLength(E)), workgroups: [1, 1, 1] });
}

export const moeExpertChoiceRouter = defineKernel('moe_ec_router', (_s: ExpertChoiceShape) => routerBindings(), { portable: (n, s) => moeExpertChoiceRouterKernel(n, s) });
export const moeExpertChoiceDispatch = defineKernel('moe_ec_dispatch', (_s: ExpertChoiceShape) => dispatchBindings(), { portable: (n, s) => moeExpertChoiceDispatchKernel(n, s) });
export const moeExpertChoiceStats = defineKernel('moe_ec_stats', (_s: ExpertChoiceShape) => statsBindings(), { portable: (n, s) => moeExpertChoiceStatsKernel(n, s) });
