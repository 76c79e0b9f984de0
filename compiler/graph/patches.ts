// The tensor graph of the patch model of Chen et al. 2022, the model of the synthetic cluster task
// (math: compiler/reference/clusters.ts; kernels: compiler/kernels/patch-model.ts). Parameters are
// named like the transformer's MoE layer so checkpoints read alike:
//   h.0.mlp.router.weight          D×M (θ; learned: starts at zero as in the paper; frozen: random, never trained)
//   h.0.mlp.experts.c_fc.weight    M×J×D (the filters w_{m,j})
import { statsLength } from '../reference/moe.js';
import { type PatchModelShape, patchStateWidth } from '../reference/clusters.js';
import { patchDwChunks, patchEval, patchForward, patchLoss, patchRouterGrad, patchWeightGrad, patchWeightGradPartial } from '../kernels/patch-model.js';
import { Graph } from './ir.js';
import { param } from './gpt2.js';
import { moeStatsName } from './moe.js';


export interface PatchGraphSpec extends PatchModelShape {
  name: string;
  /** The router trains (false: frozen). */
  trainRouter: boolean;
  /** The filters' initialisation. */
  init: { kind: 'normal'; std: number } | { kind: 'uniform'; bound: number };
  /** The router's peak rate as a fraction of the experts' (the 'adam.router' uniform the runtime writes). */
  routerLrScale: number;
  /** Each step is the whole training split, in order (the runtime writes it once). */
  fullBatch: boolean;
}

export const PATCH_ROUTER = 'h.0.mlp.router.weight';
export const PATCH_EXPERTS = 'h.0.mlp.experts.c_fc.weight';
/** Layer index of the model's one routing layer in statistics and checkpoints. */
export const PATCH_LAYER = 0;

/** Forward, loss, backward and evaluation of one batch; the optimiser is added by the caller. */
export function buildPatchGraph(s: PatchGraphSpec): Graph {
  const { batch: B, patches: P, dim: D, experts: M, filters: J } = s;
  const g = new Graph(s.name);
  const shape: PatchModelShape = {
    batch: B, patches: P, dim: D, experts: M, filters: J, act: s.act, routed: s.routed, noise: s.noise, noiseDist: s.noiseDist,
    salt: s.salt, balance: s.balance, zloss: s.zloss, clusters: s.clusters,
  };
  g.tensor('x', [B, P, D], 'input');
  g.tensor('y', [B], 'input');
  g.tensor('cluster', [B], 'input', { dtype: 'u32' });
  g.tensor('adam', [4], 'uniform');
  g.tensor('train_loss', [1], 'output');
  g.tensor('eval_sum', [3 + s.clusters * M], 'output');
  g.tensor('grad_norm', [2], 'output');
  const noisy = s.routed && s.noise > 0;
  if (noisy) g.tensor('rng', [4], 'uniform', { dtype: 'u32' });
  const W = param(g, PATCH_EXPERTS, [M, J, D], s.init.kind, { ...(s.init.kind === 'normal' ? { std: s.init.std } : { bound: s.init.bound }), decay: true });
  const theta = s.routed ? param(g, PATCH_ROUTER, [D, M], s.trainRouter ? 'zeros' : 'normal', { std: 1 / Math.sqrt(D), decay: true, trainable: s.trainRouter }) : null;
  const state = g.tensor('patch.state', [B, patchStateWidth(s)], 'activation');
  const pre = g.tensor('patch.pre', [B, P, J], 'activation');
  g.op('forward', 'patch.forward', patchForward, [shape], { x: 'x', W, y: 'y', state, pre, ...(theta ? { theta } : {}), ...(noisy ? { rng: 'rng' } : {}) });
  if (theta) {
    const stats = g.tensor(moeStatsName(PATCH_LAYER), [statsLength(M)], 'output');
    const dh = g.tensor('patch.dlogits', [B, M], 'activation');
    g.op('backward', 'patch.loss', patchLoss, [shape], { state: state, y: 'y', train_loss: 'train_loss', stats: stats, dh: dh });
    if (s.trainRouter) g.op('backward', 'patch.router.dw', patchRouterGrad, [shape], { x: 'x', dh: dh, dtheta: `grad.${theta}` });
  } else {
    g.op('backward', 'patch.loss', patchLoss, [shape], { state, y: 'y', train_loss: 'train_loss' });
  }
  const partial = g.tensor('patch.dw.partial', [patchDwChunks(shape) * M * J * D], 'activation');
  g.op('backward', 'patch.experts.dw.partial', patchWeightGradPartial, [shape], { x: 'x', pre: pre, state: state, y: 'y', partial: partial });
  g.op('backward', 'patch.experts.dw', patchWeightGrad, [shape], { partial: partial, dW: `grad.${W}` });
  g.op('eval', 'patch.eval', patchEval, [shape], { state: state, y: 'y', cluster: 'cluster', acc: 'eval_sum' });
  return g;
}
