// The sequence-wise balance loss (DeepSeek-V3's complementary loss) of a token-routed MoE layer:
// E·Σ_i f_{b,i}·P_{b,i} per sequence b, averaged over the micro-batch's sequences. It runs after
// the dispatch and replaces the statistics' balance figure (STAT.balance) with this loss, so the
// auxiliary-loss kernels, the training loss's parts and the load window take it unchanged; the
// sequences' counts it writes are the f the router backward reads (moe-router.ts).
// Reference: compiler/reference/moe-seq-balance.ts.
import { STAT } from '../reference/moe.js';
import { type SeqBalanceShape, sequencesOf } from '../reference/moe-seq-balance.js';
import { assignmentWgsl } from '../routing/slots.js';
import type { RowKernel } from './layernorm.js';
import { checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { f, u } from './wgsl.js';

export type { SeqBalanceShape } from '../reference/moe-seq-balance.js';

const WG = 64;

const seqBalanceBindings = () => [read('sel', 'array<u32>'), read('logits'), readWrite('seqcounts'), readWrite('stats')];

/**
 * One workgroup: invocation t takes sequences t, t + 64, ...; for each it counts the assignments
 * per expert and sums the scores over its tokens, writes the counts and adds
 * Σ_i c_i·P_i / (T·K·T) to its part; invocation 0 sums the parts into E·(Σ_b ...) / B.
 * Bindings: sel (read, N·K u32), logits (read, N×E), seqcounts (write, B×E), stats (read_write;
 * writes STAT.balance only).
 */
export function moeSeqBalanceKernel(name: string, s: SeqBalanceShape): RowKernel {
  const { tokens: N, experts: E, top: K, seqLen: T } = s;
  checkDims(name, { N, E, K, T });
  if (N % T !== 0) throw new Error(`${name}: ${N} tokens are not whole sequences of ${T}`);
  if (K > E) throw new Error(`${name}: top ${K} > experts ${E}`);
  const B = sequencesOf(s);
  const b = seqBalanceBindings();
  const softmax = s.score === 'softmax';
  const wgsl = `
${declarations(b)}
var<workgroup> part: array<f32, ${WG}>;

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  var acc = 0.0;
  for (var b = t; b < ${u(B)}; b += ${u(WG)}) {
    var c: array<f32, ${E}>;
    var p: array<f32, ${E}>;
    for (var e = 0u; e < ${u(E)}; e++) { c[e] = 0.0; p[e] = 0.0; }
    for (var i = 0u; i < ${u(T)}; i++) {
      let n = b * ${u(T)} + i;${softmax ? `
      var m = -3.0e38;
      for (var e = 0u; e < ${u(E)}; e++) { m = max(m, logits[n * ${u(E)} + e]); }
      var z = 0.0;
      for (var e = 0u; e < ${u(E)}; e++) { z += exp(logits[n * ${u(E)} + e] - m); }
      for (var e = 0u; e < ${u(E)}; e++) { p[e] += exp(logits[n * ${u(E)} + e] - m) / z; }` : `
      for (var e = 0u; e < ${u(E)}; e++) { p[e] += 1.0 / (1.0 + exp(-logits[n * ${u(E)} + e])); }`}
      for (var k = 0u; k < ${u(K)}; k++) { c[sel[${assignmentWgsl({ top: K }, 'n', 'k')}]] += 1.0; }
    }
    var seq = 0.0;
    for (var e = 0u; e < ${u(E)}; e++) {
      seqcounts[b * ${u(E)} + e] = c[e];
      seq += c[e] * p[e];
    }
    acc += seq * ${f(1 / (T * K * T))};
  }
  part[t] = acc;
  workgroupBarrier();
  if (t == 0u) {
    var tot = 0.0;
    for (var w = 0u; w < ${u(WG)}; w++) { tot += part[w]; }
    stats[${u(STAT.balance)}] = tot * ${f(E / B)};
  }
}
`;
  return boundKernel(name, b, wgsl, [WG, 1, 1], { flops: N * E * 6 + N * K, bytes: 4 * (N * E + N * K + B * E + 1), workgroups: [1, 1, 1] });
}

export const moeSeqBalance = defineKernel('moe_seq_balance', (_s: SeqBalanceShape) => seqBalanceBindings(), { portable: moeSeqBalanceKernel });
