// Soft MoE FFN layers (Puigcerver et al. 2023) in the GPT-2 training graph: see softMoeBlock.
import type { MoeConfig } from '../frontend/types.js';
import { statsLength } from '../reference/moe.js';
import { softDims } from '../reference/moe-soft.js';
import type { SoftShape } from '../kernels/moe-soft.js';
import { type BlockBuilder, type Gpt2Spec, param } from './gpt2.js';
import type { Graph } from './ir.js';
import { moeStatsName } from './moe-outputs.js';

/**
 * Soft MoE FFN layers (Puigcerver et al. 2023), per sequence of T tokens (notation in
 * reference/moe-soft.ts): logits L = x·Φ (Φ = h.{l}.mlp.soft.phi, C × E·S), dispatch weights D
 * (softmax over the sequence's tokens), slot inputs X̃ = Dᵀ·x, the same stacked experts as the
 * sparse layers over the E·S slots of every sequence (grouped matmuls, slot rows expert-contiguous),
 * combine weights W (softmax over slots), output W·Ỹ. Every expert sees every sequence's slots.
 * Not causal: a token's output mixes slots computed from every token of its sequence, later ones
 * included (`moec check` warns). The statistics output keeps the sparse layout (softStatsReference).
 */
export function softMoeBlock(s: Gpt2Spec, moe: MoeConfig, dense: BlockBuilder): BlockBuilder {
  const moeLayers = new Set(moe.layers);
  const shape: SoftShape = { seqs: s.batch, seqLen: s.context, width: s.width, experts: moe.experts, slots: moe.slots };
  const { M, N, rows: R } = softDims(shape);
  const C = s.width;
  const F = s.ffn;
  const E = moe.experts;
  const linearExperts = moe.expert === 'linear';
  const act = moe.activation;
  const projStd = 0.02 / Math.sqrt(2 * s.layers);
  const layer = (g: Graph, l: number) => {
    const p = `h.${l}.mlp.experts`;
    const t = (name: string, shape: number[]) => g.tensor(`h${l}.moe.${name}`, shape, 'activation');
    return {
      // Φ: GPT-2's normal(0.02) init, weight-decayed like a router.
      phi: param(g, `h.${l}.mlp.soft.phi`, [C, M], 'normal'),
      W1: linearExperts ? null : param(g, `${p}.c_fc.weight`, [E, C, F], 'normal'),
      b1: linearExperts ? null : param(g, `${p}.c_fc.bias`, [E, F], 'zeros', { decay: false }),
      W2: param(g, linearExperts ? `${p}.proj.weight` : `${p}.c_proj.weight`, [E, linearExperts ? C : F, C], 'normal', { std: projStd }),
      b2: param(g, linearExperts ? `${p}.proj.bias` : `${p}.c_proj.bias`, [E, C], 'zeros', { decay: false }),
      logits: t('soft.logits', [N, M]),
      D: t('soft.dispatch', [N, M]),
      W: t('soft.combine', [N, M]),
      offsets: g.tensor(`h${l}.moe.offsets`, [E + 1], 'activation', { dtype: 'u32' }),
      Xs: t('soft.slots', [R, C]),
      H: linearExperts ? null : t('fc', [R, F]),
      A: linearExperts ? null : t('act', [R, F]),
      Y: t('proj', [R, C]),
      stats: g.tensor(moeStatsName(l), [statsLength(E)], 'output'),
    };
  };
  return {
    routing: [...moeLayers].sort((a, b) => a - b).map((layer) => ({ layer, experts: E, selPerToken: null })),
    forward(g, l, x, out) {
      if (!moeLayers.has(l)) return dense.forward(g, l, x, out);
      const L = layer(g, l);
      g.op('forward', `h${l}.mlp.soft.logits`, 'matmul', [{ m: N, n: M, k: C }], [x, L.phi, L.logits]);
      g.op('forward', `h${l}.moe.soft.weights`, 'moe_soft_weights', [shape], [L.logits, L.D, L.W, L.offsets]);
      g.op('forward', `h${l}.moe.soft.dispatch`, 'moe_soft_dispatch', [shape], [x, L.D, L.Xs]);
      if (linearExperts) {
        g.op('forward', `h${l}.mlp.experts.proj`, 'moe_gmm', [{ rows: R, n: C, k: C, experts: E, bias: true }], [L.Xs, L.W2, L.Y, L.offsets, L.b2]);
      } else {
        g.op('forward', `h${l}.mlp.experts.c_fc`, 'moe_gmm', [{ rows: R, n: F, k: C, experts: E, bias: true, activation: act, savePre: true }], [L.Xs, L.W1!, L.A!, L.offsets, L.b1!, L.H!]);
        g.op('forward', `h${l}.mlp.experts.c_proj`, 'moe_gmm', [{ rows: R, n: C, k: F, experts: E, bias: true }], [L.A!, L.W2, L.Y, L.offsets, L.b2]);
      }
      g.op('forward', `h${l}.moe.soft.combine`, 'moe_soft_combine', [shape], [L.Y, L.W, out]);
      g.op('forward', `h${l}.moe.soft.stats`, 'moe_soft_stats', [shape], [L.W, L.stats]);
    },
    backward(g, l, x, dout, dx) {
      if (!moeLayers.has(l)) return dense.backward(g, l, x, dout, dx);
      const L = layer(g, l);
      const t = (name: string, shape: number[]) => g.tensor(`h${l}.moe.${name}`, shape, 'activation');
      const dY = t('dproj', [R, C]);
      const dXs = t('soft.dslots', [R, C]);
      const dlogits = t('soft.dlogits', [N, M]);
      // dlogits: the combine softmax's part (written), then the dispatch softmax's (added).
      g.op('backward', `h${l}.moe.soft.combine.dx`, 'moe_soft_combine_bwd', [shape], [dout, L.Y, L.W, dY, dlogits]);
      const proj = linearExperts ? `h${l}.mlp.experts.proj` : `h${l}.mlp.experts.c_proj`;
      g.op('backward', `${proj}.dW`, 'moe_wgrad', [{ k: linearExperts ? C : F, n: C, experts: E, rows: R }], [linearExperts ? L.Xs : L.A!, dY, L.offsets, `grad.${L.W2}`]);
      g.op('backward', `${proj}.db`, 'moe_bgrad', [C, E, R], [dY, L.offsets, `grad.${L.b2}`]);
      if (linearExperts) {
        g.op('backward', `${proj}.dx`, 'moe_gmm', [{ rows: R, n: C, k: C, experts: E, transB: true }], [dY, L.W2, dXs, L.offsets]);
      } else {
        const dH = t('dfc', [R, F]);
        g.op('backward', `${proj}.dx`, 'moe_gmm', [{ rows: R, n: F, k: C, experts: E, transB: true, actGrad: act }], [dY, L.W2, dH, L.offsets, L.H!]);
        g.op('backward', `h${l}.mlp.experts.c_fc.dW`, 'moe_wgrad', [{ k: C, n: F, experts: E, rows: R }], [L.Xs, dH, L.offsets, `grad.${L.W1}`]);
        g.op('backward', `h${l}.mlp.experts.c_fc.db`, 'moe_bgrad', [F, E, R], [dH, L.offsets, `grad.${L.b1}`]);
        g.op('backward', `h${l}.mlp.experts.c_fc.dx`, 'moe_gmm', [{ rows: R, n: C, k: F, experts: E, transB: true }], [dH, L.W1!, dXs, L.offsets]);
      }
      g.op('backward', `h${l}.moe.soft.dispatch.dx`, 'moe_soft_dispatch_bwd', [shape], [x, L.D, dXs, dx, dlogits]);
      g.op('backward', `h${l}.mlp.soft.phi.dW`, 'matmul', [{ m: C, n: M, k: N, transA: true, accumulate: true }], [x, dlogits, `grad.${L.phi}`]);
      g.op('backward', `h${l}.mlp.soft.logits.dx`, 'matmul', [{ m: N, n: C, k: M, transB: true, accumulate: true }], [dlogits, L.phi, dx]);
    },
  };
}
