// The stacked experts of an MoE layer, shared by sparse dispatch (graph/moe.ts) and Soft MoE
// (graph/moe-soft.ts): one tensor per kind with leading dimension E, HF-like names
// h.{l}.mlp.experts.c_fc.weight (E, C, F), .c_fc.bias (E, F), .c_proj.weight (E, F, C),
// .c_proj.bias (E, C), F the routed experts' own width (`expert-width`, frontend/expert-width.ts); linear experts h.{l}.mlp.experts.proj.weight (E, C, C) and .proj.bias (E, C).
// Their ops are grouped matmuls over expert-contiguous slot rows (kernels/moe-grouped.ts).
import { routedWidth } from '../frontend/expert-width.js';
import type { MoeConfig } from '../frontend/types.js';
import type { SlotLayout } from '../routing/slots.js';
import { type Gpt2Spec, param } from './gpt2.js';
import type { Graph } from './ir.js';
import { moeBiasGrad, moeGroupedMatmul, moeWeightGrad } from '../kernels/moe-grouped-subgroup.js';

export interface ExpertParams {
  W1: string | null;
  b1: string | null;
  W2: string;
  b2: string;
}

/** Layer l's expert parameters (W1/b1 null for linear experts), declared in this order. */
export function expertParams(g: Graph, s: Gpt2Spec, moe: MoeConfig, l: number): ExpertParams {
  const C = s.width;
  const F = routedWidth(moe, s.ffn);
  const E = moe.experts;
  const linear = moe.expert === 'linear';
  const p = `h.${l}.mlp.experts`;
  const projStd = 0.02 / Math.sqrt(2 * s.layers);
  // A linear expert is one C×C map with a bias; an MLP expert the dense FFN's c_fc, activation, c_proj.
  return {
    W1: linear ? null : param(g, `${p}.c_fc.weight`, [E, C, F], 'normal'),
    b1: linear ? null : param(g, `${p}.c_fc.bias`, [E, F], 'zeros', { decay: false }),
    W2: param(g, linear ? `${p}.proj.weight` : `${p}.c_proj.weight`, [E, linear ? C : F, C], 'normal', { std: projStd }),
    b2: param(g, linear ? `${p}.proj.bias` : `${p}.c_proj.bias`, [E, C], 'zeros', { decay: false }),
  };
}

/**
 * What the experts read and write: `rows` slot rows, expert e's at offsets[e] .. offsets[e+1]; the
 * input row of a slot is the token of its assignment (through perm) with `gather`, else the slot
 * itself. H (pre-activation) and A (activation) are the MLP experts' hidden rows, Y their output.
 */
export interface ExpertRows {
  rows: number;
  input: string;
  offsets: string;
  gather: { slots: SlotLayout; perm: string } | null;
  H: string | null;
  A: string | null;
  Y: string;
}

/** Y = experts(input rows), one grouped matmul per expert layer. */
export function expertsForward(g: Graph, l: number, s: Gpt2Spec, moe: MoeConfig, P: ExpertParams, io: ExpertRows): void {
  const C = s.width;
  const F = routedWidth(moe, s.ffn);
  const E = moe.experts;
  const gather = io.gather ? { gather: io.gather.slots } : {};
  const perm: Record<string, string> = io.gather ? { perm: io.gather.perm } : {};
  if (moe.expert === 'linear') {
    g.op('forward', `h${l}.mlp.experts.proj`, moeGroupedMatmul, [{ rows: io.rows, n: C, k: C, experts: E, ...gather, bias: true }], { A: io.input, B: P.W2, C: io.Y, offsets: io.offsets, ...perm, bias: P.b2 });
  } else {
    g.op('forward', `h${l}.mlp.experts.c_fc`, moeGroupedMatmul, [{ rows: io.rows, n: F, k: C, experts: E, ...gather, bias: true, activation: moe.activation, savePre: true }], { A: io.input, B: P.W1!, C: io.A!, offsets: io.offsets, ...perm, bias: P.b1!, pre: io.H! });
    g.op('forward', `h${l}.mlp.experts.c_proj`, moeGroupedMatmul, [{ rows: io.rows, n: C, k: F, experts: E, bias: true }], { A: io.A!, B: P.W2, C: io.Y, offsets: io.offsets, bias: P.b2 });
  }
}

/** From dY (rows × C): the expert weight and bias gradients (accumulated) and dX, the input rows' gradient. */
export function expertsBackward(g: Graph, l: number, s: Gpt2Spec, moe: MoeConfig, P: ExpertParams, io: ExpertRows, dY: string, dX: string): void {
  const C = s.width;
  const F = routedWidth(moe, s.ffn);
  const E = moe.experts;
  const R = io.rows;
  const linear = moe.expert === 'linear';
  const gather = io.gather ? { gather: io.gather.slots } : {};
  const perm: Record<string, string> = io.gather ? { perm: io.gather.perm } : {};
  const proj = linear ? `h${l}.mlp.experts.proj` : `h${l}.mlp.experts.c_proj`;
  g.op('backward', `${proj}.dW`, moeWeightGrad, [{ k: linear ? C : F, n: C, experts: E, rows: R, ...(linear ? gather : {}) }], { A: linear ? io.input : io.A!, D: dY, offsets: io.offsets, ...(linear ? perm : {}), dW: `grad.${P.W2}` });
  g.op('backward', `${proj}.db`, moeBiasGrad, [C, E, R], { D: dY, offsets: io.offsets, db: `grad.${P.b2}` });
  if (linear) {
    g.op('backward', `${proj}.dx`, moeGroupedMatmul, [{ rows: R, n: C, k: C, experts: E, transB: true }], { A: dY, B: P.W2, C: dX, offsets: io.offsets });
    return;
  }
  const dH = g.tensor(`h${l}.moe.dfc`, [R, F], 'activation');
  g.op('backward', `${proj}.dx`, moeGroupedMatmul, [{ rows: R, n: F, k: C, experts: E, transB: true, actGrad: moe.activation }], { A: dY, B: P.W2, C: dH, offsets: io.offsets, H: io.H! });
  g.op('backward', `h${l}.mlp.experts.c_fc.dW`, moeWeightGrad, [{ k: C, n: F, experts: E, ...gather, rows: R }], { A: io.input, D: dH, offsets: io.offsets, ...perm, dW: `grad.${P.W1}` });
  g.op('backward', `h${l}.mlp.experts.c_fc.db`, moeBiasGrad, [F, E, R], { D: dH, offsets: io.offsets, db: `grad.${P.b1}` });
  g.op('backward', `h${l}.mlp.experts.c_fc.dx`, moeGroupedMatmul, [{ rows: R, n: C, k: F, experts: E, transB: true }], { A: dH, B: P.W1!, C: dX, offsets: io.offsets });
}
