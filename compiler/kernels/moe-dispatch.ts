import { type MoeRouting, STAT, statsLength } from '../reference/moe.js';
import { assignmentWgsl } from '../routing/slots.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { u } from './wgsl.js';


export interface MoeDispatchShape extends MoeRouting {
  /** Slots per expert; N·K for dropless. */
  capacity: number;
  /** Whether router logits exist (learned or frozen routers): they feed the balance/z/entropy statistics. */
  logits: boolean;
  score: 'softmax' | 'sigmoid';
}

/** Workgroup-memory floats per (invocation, expert) pair budget: 2 arrays of W·E words within 16 KiB. */
const PAIRS = 1536;

const dispatchBindings = (s: MoeDispatchShape) => [
  read('sel', 'array<u32>'),
  ...(s.logits ? [read('logits')] : []),
  readWrite('offsets', 'array<u32>'),
  readWrite('perm', 'array<u32>'),
  readWrite('pos', 'array<u32>'),
  readWrite('stats'),
];

/**
 * Dispatch in one workgroup of W invocations, deterministic without atomics. Assignments are taken
 * in priority order q = k·N + n (first choices before second choices, tokens in order), split into
 * W contiguous chunks. (1) Each invocation counts its chunk per expert; (2) invocation e scans the
 * counts of expert e over the chunks (so each chunk knows its first rank) and sums the mean scores;
 * (3) invocation 0 caps each expert at `capacity`, prefix-sums the kept counts into offsets and
 * writes the statistics; (4) each invocation walks its chunk again and gives each assignment its
 * slot offsets[e] + rank, or drops it (pos = 0xffffffff) when rank ≥ capacity.
 * Bindings: sel (read, N·K u32), logits (read, R×E; only when `logits`), offsets (write, E+1 u32),
 * perm (write, slot → assignment), pos (write, assignment → slot), stats (write, see STAT).
 */
export function moeDispatchKernel(name: string, s: MoeDispatchShape): RowKernel {
  const { tokens: N, experts: E, top: K, rep, capacity } = s;
  checkDims(name, { N, E, K, rep, capacity });
  const NK = N * K;
  let W = 256;
  while (W > 1 && W * E > PAIRS) W /= 2;
  if (W * E > PAIRS) throw new Error(`${name}: ${E} experts do not fit the dispatch kernel's workgroup memory`);
  const chunk = ceilDiv(NK, W);
  const rowChunk = ceilDiv(N, W);
  const stats = s.logits
    ? `
  // Mean gate score, log-sum-exp² and softmax entropy over token rows (a row's logits are its routing row's).
  for (var e = 0u; e < ${u(E)}; e++) { part[t * ${u(E)} + e] = 0.0; }
  var zs = 0.0;
  var hs = 0.0;
  let n0 = t * ${u(rowChunk)};
  for (var n = n0; n < min(n0 + ${u(rowChunk)}, ${u(N)}); n++) {
    let r = n / ${u(rep)};
    var m = -3.0e38;
    for (var e = 0u; e < ${u(E)}; e++) { m = max(m, logits[r * ${u(E)} + e]); }
    var z = 0.0;
    for (var e = 0u; e < ${u(E)}; e++) { z += exp(logits[r * ${u(E)} + e] - m); }
    let lse = m + log(z);
    zs += lse * lse;
    for (var e = 0u; e < ${u(E)}; e++) {
      let l = logits[r * ${u(E)} + e];
      let p = exp(l - m) / z;
      if (p > 0.0) { hs -= p * log(p); }
      part[t * ${u(E)} + e] += ${s.score === 'softmax' ? 'p' : '1.0 / (1.0 + exp(-l))'};
    }
  }
  zpart[t] = zs;
  hpart[t] = hs;`
    : '';
  const b = dispatchBindings(s);
  const wgsl = `
${declarations(b)}
var<workgroup> cnt: array<u32, ${W * E}>;
var<workgroup> part: array<f32, ${W * E}>;
var<workgroup> zpart: array<f32, ${W}>;
var<workgroup> hpart: array<f32, ${W}>;
var<workgroup> routed: array<u32, ${E}>;
var<workgroup> meanScore: array<f32, ${E}>;
var<workgroup> off: array<u32, ${E + 1}>;

fn assignment(q: u32) -> u32 { return ${assignmentWgsl({ top: K }, `(q % ${u(N)})`, `q / ${u(N)}`)}; }

@compute @workgroup_size(${W}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  let q0 = t * ${u(chunk)};
  let q1 = min(q0 + ${u(chunk)}, ${u(NK)});
  for (var e = 0u; e < ${u(E)}; e++) { cnt[t * ${u(E)} + e] = 0u; }
  for (var q = q0; q < q1; q++) { cnt[t * ${u(E)} + sel[assignment(q)]] += 1u; }
  zpart[t] = 0.0;
  hpart[t] = 0.0;
${stats}
  workgroupBarrier();
  if (t < ${u(E)}) {
    var run = 0u;
    var ps = 0.0;
    for (var w = 0u; w < ${u(W)}; w++) {
      let c = cnt[w * ${u(E)} + t];
      cnt[w * ${u(E)} + t] = run;
      run += c;
      ${s.logits ? `ps += part[w * ${u(E)} + t];` : ''}
    }
    routed[t] = run;
    meanScore[t] = ps / ${N}.0;
  }
  workgroupBarrier();
  if (t == 0u) {
    var o = 0u;
    var bal = 0.0;
    var zs = 0.0;
    var hs = 0.0;
    for (var e = 0u; e < ${u(E)}; e++) {
      off[e] = o;
      offsets[e] = o;
      o += min(routed[e], ${u(capacity)});
      stats[${u(STAT.counts)} + e] = f32(routed[e]);
      stats[${u(STAT.counts + E)} + e] = meanScore[e];
      bal += f32(routed[e]) / ${NK}.0 * meanScore[e];
    }
    for (var w = 0u; w < ${u(W)}; w++) { zs += zpart[w]; hs += hpart[w]; }
    off[${u(E)}] = o;
    offsets[${u(E)}] = o;
    stats[${u(STAT.balance)}] = ${E}.0 * bal;
    stats[${u(STAT.z)}] = zs / ${N}.0;
    stats[${u(STAT.dropped)}] = f32(${u(NK)} - o) / ${NK}.0;
    stats[${u(STAT.entropy)}] = hs / ${N}.0;
  }
  workgroupBarrier();
  for (var q = q0; q < q1; q++) {
    let a = assignment(q);
    let e = sel[a];
    let rank = cnt[t * ${u(E)} + e];
    cnt[t * ${u(E)} + e] = rank + 1u;
    if (rank < ${u(capacity)}) {
      let slot = off[e] + rank;
      perm[slot] = a;
      pos[a] = slot;
    } else {
      pos[a] = 0xffffffffu;
    }
  }
}
`;
  return boundKernel(name, b, wgsl, [W, 1, 1], {
    flops: NK * 4 + (s.logits ? N * E * 8 : 0),
    bytes: 4 * (3 * NK + (s.logits ? (N / rep) * E : 0) + statsLength(E)),
    workgroups: [1, 1, 1],
  });
}

export const moeDispatch = defineKernel('moe_dispatch', dispatchBindings, { portable: moeDispatchKernel });
