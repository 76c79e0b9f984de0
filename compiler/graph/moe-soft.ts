// Soft MoE FFN layers (Puigcerver et al. 2023) in the GPT-2 training graph: see softMoeBlock.
import { routedWidth } from '../frontend/expert-width.js';
import type { MoeConfig } from '../frontend/types.js';
import { statsLength } from '../reference/moe.js';
import { softDims } from '../reference/moe-soft.js';
import { moeSoftCombine, moeSoftCombineBackward, moeSoftDispatch, moeSoftDispatchBackward, moeSoftStats, moeSoftWeights, type SoftShape } from '../kernels/moe-soft.js';
import { type BlockBuilder, type Gpt2Spec, param } from './gpt2.js';
import type { Graph } from './ir.js';
import { matmul } from '../kernels/matmul.js';
import { type ExpertRows, expertParams, expertsBackward, expertsForward } from './moe-experts.js';
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
  const F = routedWidth(moe, s.ffn);
  const E = moe.experts;
  const linearExperts = moe.expert === 'linear';
  const layer = (g: Graph, l: number) => {
    const t = (name: string, shape: number[]) => g.tensor(`h${l}.moe.${name}`, shape, 'activation');
    return {
      // Φ: GPT-2's normal(0.02) init, weight-decayed like a router.
      phi: param(g, `h.${l}.mlp.soft.phi`, [C, M], 'normal'),
      ...expertParams(g, s, moe, l),
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
  /** The experts' rows: the E·S slots of every sequence, expert-contiguous, no gather. */
  const rowsOf = (L: ReturnType<typeof layer>): ExpertRows => ({ rows: R, input: L.Xs, offsets: L.offsets, gather: null, H: L.H, A: L.A, Y: L.Y });
  return {
    routing: [...moeLayers].sort((a, b) => a - b).map((layer) => ({ layer, experts: E, selPerToken: null })),
    forward(g, l, x, out) {
      if (!moeLayers.has(l)) return dense.forward(g, l, x, out);
      const L = layer(g, l);
      g.op('forward', `h${l}.mlp.soft.logits`, matmul, [{ m: N, n: M, k: C }], { A: x, B: L.phi, C: L.logits });
      g.op('forward', `h${l}.moe.soft.weights`, moeSoftWeights, [shape], { logits: L.logits, D: L.D, W: L.W, offsets: L.offsets });
      g.op('forward', `h${l}.moe.soft.dispatch`, moeSoftDispatch, [shape], { x, D: L.D, Xs: L.Xs });
      expertsForward(g, l, s, moe, L, rowsOf(L));
      g.op('forward', `h${l}.moe.soft.combine`, moeSoftCombine, [shape], { Ys: L.Y, W: L.W, out });
      g.op('forward', `h${l}.moe.soft.stats`, moeSoftStats, [shape], { W: L.W, stats: L.stats });
    },
    backward(g, l, x, dout, dx) {
      if (!moeLayers.has(l)) return dense.backward(g, l, x, dout, dx);
      const L = layer(g, l);
      const t = (name: string, shape: number[]) => g.tensor(`h${l}.moe.${name}`, shape, 'activation');
      const dY = t('dproj', [R, C]);
      const dXs = t('soft.dslots', [R, C]);
      const dlogits = t('soft.dlogits', [N, M]);
      // dlogits: the combine softmax's part (written), then the dispatch softmax's (added).
      g.op('backward', `h${l}.moe.soft.combine.dx`, moeSoftCombineBackward, [shape], { dout, Ys: L.Y, W: L.W, dYs: dY, dlogits });
      expertsBackward(g, l, s, moe, L, rowsOf(L), dY, dXs);
      g.op('backward', `h${l}.moe.soft.dispatch.dx`, moeSoftDispatchBackward, [shape], { x, D: L.D, dXs, dx, dlogits });
      g.op('backward', `h${l}.mlp.soft.phi.dW`, matmul, [{ m: C, n: M, k: N, transA: true, accumulate: true }], { A: x, B: dlogits, C: `grad.${L.phi}` });
      g.op('backward', `h${l}.mlp.soft.logits.dx`, matmul, [{ m: N, n: C, k: M, transB: true, accumulate: true }], { A: dlogits, B: L.phi, C: dx });
    },
  };
}
