import { mix32 as mix32Host } from '../reference/dropout.js';
import { mix32Wgsl } from './dropout.js';
import { type MoeRouterShape, type RouterLossShape, routingRows, STAT } from '../reference/moe.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { type Binding, bindingOfDeclaration, boundKernel, declarations, defineKernel, perElementMain, read, readWrite, uniform } from './definition.js';
import { assignmentCount, assignmentWgsl, rowAssignmentWgsl } from '../routing/slots.js';
import { u, f } from './wgsl.js';

export type { MoeRouterShape, RouterLossShape } from '../reference/moe.js';
// The router's other kernels live in files of their own; re-exported for the callers of this one.
export { moeCosineBackwardEmbKernel, moeCosineBackwardPKernel, moeCosineBackwardScaleKernel, moeCosineForwardKernel, type CosineShape } from './moe-cosine.js';
export { noiseKeyWgsl, moeRouterNoiseKernel, routerNoiseWgsl } from './moe-noise.js';
export { moePoolBackwardKernel, moePoolForwardKernel, type PoolShape } from './moe-pool.js';

function checkRouting(name: string, s: MoeRouterShape): void {
  checkDims(name, { tokens: s.tokens, experts: s.experts, top: s.top, rep: s.rep });
  if (s.top > s.experts) throw new Error(`${name}: top ${s.top} > experts ${s.experts}`);
  if (s.tokens % s.rep !== 0) throw new Error(`${name}: ${s.tokens} tokens are not whole routing rows of ${s.rep}`);
}

/**
 * A router without logits (random, label, hash, ...): the input it reads and, per token n, the WGSL
 * that writes sel and gate for n's assignments. Each such router kind brings its own (compiler/routing).
 */
export interface SelectionRule {
  /** The declaration of the one input it reads (binding 0), e.g. `var<uniform> rng: Rng;`. */
  decl: string;
  /** Reads the `rng` uniform block (adds the Rng struct and mix32). */
  usesRng: boolean;
  /** The body, after `let n = gid.x;` and its guard. */
  body(s: MoeRouterShape): string;
  /** WGSL functions the body calls, placed before main (mix32 comes with `usesRng`). */
  helpers?: string;
}

/**
 * The router forward's bindings: its input (the logits, or the rule's one input), the bias
 * (auxiliary-loss-free balancing), the rng block
 * (GShard's sampled choices), sel, gate. A rule's input is its WGSL declaration (`decl`), read back
 * into a binding so the text the rule wrote is the text emitted.
 */
export function routerForwardBindings(s: MoeRouterShape, rule?: SelectionRule): Binding[] {
  const logits = s.mode === 'logits';
  const sampled = logits && s.sampled === true && s.top > 1;
  return [
    logits ? read('logits') : bindingOfDeclaration(rule!.decl),
    ...(logits && s.biased === true ? [read('bias')] : []),
    ...(sampled ? [uniform('rng', 'Rng')] : []),
    readWrite('sel', 'array<u32>'),
    readWrite('gate'),
  ];
}
// The sequence-wise balance loss reads each sequence's counts (kernels/moe-seq-balance.ts) instead of the batch's.
const routerBackwardBindings = (s: Pick<RouterLossShape, 'balanceOver'>) =>
  [read('logits'), read('sel', 'array<u32>'), read('dgate'), read('stats'), ...(s.balanceOver === 'sequence' ? [read('seqcounts')] : []), readWrite('dlogits')];
const auxLossBindings = () => [read('stats'), readWrite('acc')];

/**
 * Router forward, one invocation per token. Mode 'logits': the routing row's logits (row n / rep),
 * the gate scores (softmax or sigmoid), top-k by logit (ties to the lower expert), optional
 * renormalisation; with `sampled` (GShard), training draws the choices after the first in
 * proportion to their scores. Any other mode: the `rule` of that router kind.
 * With `biased` (auxiliary-loss-free balancing, mode logits), the top-k is by score + bias[e]
 * instead of by logit; the gates stay the unbiased scores.
 * Bindings: logits (read; mode logits) | the rule's input, [bias (read, E; biased)], [rng (uniform;
 * sampled)], sel (write, N·K u32), gate (write, N·K).
 */
export function moeRouterForwardKernel(name: string, s: MoeRouterShape, rule?: SelectionRule, wg = 64): RowKernel {
  checkRouting(name, s);
  const { tokens: N, experts: E, top: K } = s;
  const slots = { top: K };
  const logits = s.mode === 'logits';
  if (!logits && !rule) throw new Error(`${name}: router mode '${s.mode}' needs its selection rule`);
  const sampled = logits && s.sampled === true && K > 1;
  const biased = logits && s.biased === true;
  if (biased && sampled) throw new Error(`${name}: a biased router does not sample its second expert`);
  const b = routerForwardBindings(s, rule);
  const usesRng = (!logits && rule!.usesRng) || sampled;
  const score = (e: string) => (s.score === 'softmax' ? `exp(l[${e}] - m) / z` : `1.0 / (1.0 + exp(-l[${e}]))`);
  const body = !logits ? rule!.body(s) : `
  let r = n / ${u(s.rep)};
  var l: array<f32, ${E}>;
  var taken: array<u32, ${E}>;
  var m = -3.0e38;
  for (var e = 0u; e < ${u(E)}; e++) { l[e] = logits[r * ${u(E)} + e]; m = max(m, l[e]); taken[e] = 0u; }
  var tot = 0.0;
  ${s.score === 'softmax' ? `var z = 0.0;
  for (var e = 0u; e < ${u(E)}; e++) { z += exp(l[e] - m); }` : ''}${biased ? `
  // Auxiliary-loss-free balancing: select by score + bias, gate by the score alone.
  var key: array<f32, ${E}>;
  for (var e = 0u; e < ${u(E)}; e++) { key[e] = ${score('e')} + bias[e]; }` : ''}
  var g: array<f32, ${K}>;
  for (var k = 0u; k < ${u(K)}; k++) {
    var best = ${u(E)};
    for (var e = 0u; e < ${u(E)}; e++) {
      if (taken[e] == 0u && (best == ${u(E)} || ${biased ? 'key[e] > key[best]' : 'l[e] > l[best]'})) { best = e; }
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
    sel[${assignmentWgsl(slots, 'n', 'k')}] = best;
    g[k] = ${score('best')};
    tot += g[k];
  }
  for (var k = 0u; k < ${u(K)}; k++) { gate[${assignmentWgsl(slots, 'n', 'k')}] = ${s.normalize ? 'g[k] / tot' : 'g[k]'}; }`;
  const wgsl = `
${usesRng ? 'struct Rng { seed: u32, step: u32, train: u32, pad: u32 }' : ''}
${declarations(b)}
${usesRng ? mix32Wgsl : ''}${logits ? '' : rule!.helpers ?? ''}
${perElementMain(wg, 'n', N)}
${body}
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: N * E * (K + 6), bytes: 4 * (N * E / s.rep + 2 * N * K), workgroups: [ceilDiv(N, wg), 1, 1] });
}

/**
 * Router backward, one invocation per routing row: dL/dlogits from the gate gradients of its `rep`
 * tokens (the renormalisation's and the score function's Jacobians), plus the Switch balance loss
 * (weight `balance`; f_i from the stats' counts, constant; P_i the mean score, differentiable) and
 * the z-loss mean(lse²) (weight `zloss`). Weights include the 1/accumulate loss scale. With
 * balanceOver 'sequence' (token routing only), f_i is each sequence's share (seqcounts) and the
 * loss is averaged over the sequences.
 * Bindings: logits, sel, dgate, stats, [seqcounts (B×E; balanceOver sequence)] (read), dlogits (write, R×E).
 */
export function moeRouterBackwardKernel(name: string, s: RouterLossShape, wg = 64): RowKernel {
  checkRouting(name, s);
  if (s.mode !== 'logits') throw new Error(`${name}: only a logits router has a backward pass`);
  const perSequence = s.balanceOver === 'sequence';
  if (perSequence && (s.rep !== 1 || s.tokens % s.seqLen !== 0)) throw new Error(`${name}: the sequence-wise balance loss needs token routing over whole sequences of ${s.seqLen}`);
  const { tokens: N, experts: E, top: K, rep } = s;
  const R = routingRows(s);
  const slots = { top: K };
  const NK = assignmentCount(slots, N);
  const b = routerBackwardBindings(s);
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'r', R)}
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
    ${perSequence ? `// Sequence-wise balance loss: d(λ·E·mean_b Σ f_bi·P_bi)/d score[n, e] = λ·E·f_be / (B·T), b = n's sequence.
    dsc[e] = ${f((s.balance * E) / (s.seqLen * K * N))} * seqcounts[(r / ${u(s.seqLen)}) * ${u(E)} + e];` : `// Balance loss: d(λ·E·Σ f_i·P_i)/d score[r, e] = λ·E·f_e / R.
    dsc[e] = ${f((s.balance * E) / (NK * R))} * stats[${u(STAT.counts)} + e];`}
  }
  // Gate gradients, summed over the tokens sharing this routing row (they share its choice).
  var dg: array<f32, ${K}>;
  var chosen: array<u32, ${K}>;
  var tot = 0.0;
  for (var k = 0u; k < ${u(K)}; k++) {
    chosen[k] = sel[${rowAssignmentWgsl(slots, 'r', rep, 'k')}];
    var acc = 0.0;
    for (var t = 0u; t < ${u(rep)}; t++) { acc += dgate[${assignmentWgsl(slots, `(r * ${u(rep)} + t)`, 'k')}]; }
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
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: R * E * 12 + N * K, bytes: 4 * (2 * R * E + 2 * N * K), workgroups: [ceilDiv(R, wg), 1, 1] });
}

/**
 * Adds a layer's weighted auxiliary losses to the training loss: acc[0] += (λ·balance + ζ·z)·scale.
 * Bindings: stats (read), acc (read_write).
 */
export function moeAuxLossKernel(name: string, balance: number, zloss: number, scale: number): RowKernel {
  const b = auxLossBindings();
  const wgsl = `
${declarations(b)}
@compute @workgroup_size(1, 1, 1)
fn main() {
  acc[0] += (${f(balance)} * stats[${u(STAT.balance)}] + ${f(zloss)} * stats[${u(STAT.z)}]) * ${f(scale)};
}
`;
  return boundKernel(name, b, wgsl, [1, 1, 1], { flops: 4, bytes: 16, workgroups: [1, 1, 1] });
}


export const moeRouterBackward = defineKernel('moe_router_bwd', (s: RouterLossShape) => routerBackwardBindings(s), {
  portable: (n, s) => moeRouterBackwardKernel(n, s),
});
export const moeAuxLoss = defineKernel('moe_aux_loss', (_balance: number, _zloss: number, _scale: number) => auxLossBindings(), { portable: moeAuxLossKernel });
