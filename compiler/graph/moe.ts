// Mixture-of-Experts FFN layers in the GPT-2 training graph (issue 5). An MoE layer routes each
// token (or each sequence) to K of E experts, each with the dense FFN's shape:
//
//   [pool] → router logits (x·Wr) [+ noise] → router (top-k, gates) → dispatch (counts, capacity,
//   prefix sum, permutation) → grouped c_fc + activation → grouped c_proj → combine (gated sum per
//   token) [+ shared experts]
//
// and the backward of each step. Expert weights are stacked per layer (HF-like names, one tensor
// per kind): h.{l}.mlp.experts.c_fc.weight (E, C, F), .c_fc.bias (E, F), .c_proj.weight (E, F, C),
// .c_proj.bias (E, C); linear experts have h.{l}.mlp.experts.proj.weight (E, C, C) and .proj.bias
// (E, C); shared experts are dense GELU MLPs h.{l}.mlp.shared_experts.{i}.c_fc/c_proj. The router
// is h.{l}.mlp.router.weight (C, E), no bias (as in compiler/frontend/params.ts). Each routing
// layer writes a small statistics output, h{l}.moe.stats (see STAT in reference/moe.ts), which the
// host reads only when it wants it.
//
// Sequence routing pools the mean of the sequence's hidden states at this layer. With the whole
// sequence that mean sees later tokens, so an early token's output depends on the future (not
// causal); `unit sequence(prefix P)` pools the first P tokens only, so the decision depends on
// tokens < P alone: causal for every token from position P − 1 on.
//
// Routers: learned (x·Wr), frozen (the same, never updated: outside AdamW), cosine (X-MoE: cosine
// of a C→D projection with learned expert embeddings, times a learned inverse temperature), random
// (K distinct uniform experts per token, hashed from seed and step) and label ((label + k) mod E).
// Training options: Gaussian or uniform U(0, noise) noise on the logits (noisy top-k), GShard's
// sampled second expert.
//
// Soft MoE (`dispatch soft`, Puigcerver et al. 2023) is its own block (softMoeBlock): no router,
// top-k or dispatch; a learned Φ mixes each sequence's tokens into E·S slots the same stacked
// experts process, and mixes the slots back per token. It is not causal (see softMoeBlock).
//
// Global scope: the first MoE layer routes and every MoE layer reuses its decision (one router,
// one set of statistics and auxiliary losses); the gate gradients of all layers flow into it.
import type { MoeConfig } from '../frontend/types.js';
import { moeCombineBackwardKernel, moeCombineKernel, type CombineShape } from '../kernels/moe-combine.js';
import { moeDispatchKernel, type MoeDispatchShape } from '../kernels/moe-dispatch.js';
import { groupedBiasGradKernel, groupedMatmulKernel, groupedMatmulSubgroupKernel, groupedWeightGradKernel, groupedWeightGradSubgroupKernel, type WeightGradShape } from '../kernels/moe-grouped.js';
import {
  type CosineShape, moeAuxLossKernel, moeCosineBackwardEmbKernel, moeCosineBackwardPKernel, moeCosineBackwardScaleKernel, moeCosineForwardKernel, moePoolBackwardKernel,
  moePoolForwardKernel, moeRouterBackwardKernel, moeRouterForwardKernel, moeRouterNoiseKernel, type PoolShape,
} from '../kernels/moe-router.js';
import {
  moeSoftCombineBackwardKernel, moeSoftCombineKernel, moeSoftDispatchBackwardKernel, moeSoftDispatchKernel, moeSoftStatsKernel, moeSoftWeightsKernel, type SoftShape,
} from '../kernels/moe-soft.js';
import { registerKernel } from '../lower/kernels.js';
import type { GroupedMatmulShape, MoeRouterShape } from '../reference/moe.js';
import { statsLength } from '../reference/moe.js';
import { softDims } from '../reference/moe-soft.js';
import { type BlockBuilder, denseMlp, type Gpt2Spec, param } from './gpt2.js';
import type { Graph } from './ir.js';

registerKernel('moe_router_fwd', (n, s: MoeRouterShape) => moeRouterForwardKernel(n, s));
registerKernel('moe_router_bwd', (n, s: MoeRouterShape & { balance: number; zloss: number }) => moeRouterBackwardKernel(n, s));
registerKernel('moe_dispatch', (n, s: MoeDispatchShape) => moeDispatchKernel(n, s));
registerKernel('moe_gmm', (n, s: GroupedMatmulShape) => groupedMatmulKernel(n, s), (n, s: GroupedMatmulShape) => groupedMatmulSubgroupKernel(n, s));
registerKernel('moe_wgrad', (n, s: WeightGradShape) => groupedWeightGradKernel(n, s), (n, s: WeightGradShape) => groupedWeightGradSubgroupKernel(n, s));
registerKernel('moe_bgrad', (n, cols: number, experts: number, rows: number) => groupedBiasGradKernel(n, cols, experts, rows));
registerKernel('moe_combine', (n, s: CombineShape, weighted: boolean) => moeCombineKernel(n, s, weighted));
registerKernel('moe_combine_bwd', (n, s: CombineShape) => moeCombineBackwardKernel(n, s));
registerKernel('moe_pool_fwd', (n, s: PoolShape) => moePoolForwardKernel(n, s));
registerKernel('moe_pool_bwd', (n, s: PoolShape) => moePoolBackwardKernel(n, s));
registerKernel('moe_router_noise', (n, count: number, noise: number, salt: number, dist: 'gaussian' | 'uniform') => moeRouterNoiseKernel(n, count, noise, salt, dist));
registerKernel('moe_cosine_fwd', (n, s: CosineShape) => moeCosineForwardKernel(n, s));
registerKernel('moe_cosine_dp', (n, s: CosineShape) => moeCosineBackwardPKernel(n, s));
registerKernel('moe_cosine_demb', (n, s: CosineShape) => moeCosineBackwardEmbKernel(n, s));
registerKernel('moe_cosine_dscale', (n, s: CosineShape) => moeCosineBackwardScaleKernel(n, s));
registerKernel('moe_soft_weights', (n, s: SoftShape) => moeSoftWeightsKernel(n, s));
registerKernel('moe_soft_dispatch', (n, s: SoftShape) => moeSoftDispatchKernel(n, s));
registerKernel('moe_soft_combine', (n, s: SoftShape) => moeSoftCombineKernel(n, s));
registerKernel('moe_soft_stats', (n, s: SoftShape) => moeSoftStatsKernel(n, s));
registerKernel('moe_soft_combine_bwd', (n, s: SoftShape) => moeSoftCombineBackwardKernel(n, s));
registerKernel('moe_soft_dispatch_bwd', (n, s: SoftShape) => moeSoftDispatchBackwardKernel(n, s));
registerKernel('moe_aux_loss', (n, balance: number, zloss: number, scale: number) => moeAuxLossKernel(n, balance, zloss, scale));

/** A setting this lowering does not implement: the MoeConfig field and why. */
export interface MoeUnsupported {
  field: keyof MoeConfig;
  message: string;
  hint: string;
}

/** The first MoE setting the lowering cannot build, or null. */
export function unsupportedMoe(moe: MoeConfig, s: Gpt2Spec): MoeUnsupported | null {
  const no = (field: keyof MoeConfig, message: string, hint: string) => ({ field, message, hint });
  if (moe.noise > 0 && (moe.router === 'random' || moe.router === 'label')) return no('noise', `router noise needs router logits; a ${moe.router} router has none`, 'use noise 0, or a learned or frozen router');
  if (moe.second === 'sampled' && (moe.router === 'random' || moe.router === 'label')) return no('second', `a sampled second expert needs router scores; a ${moe.router} router has none`, 'use second top');
  if (moe.dispatch === 'soft') {
    // Soft MoE has one learned Φ per layer and no top-k, gates, capacity or auxiliary losses.
    // Settings that would change a sparse layer are refused rather than ignored; top, capacity,
    // dropless and balance (whose defaults are not 'off') are ignored, as `moec check` warns.
    const soft = 'Soft MoE (dispatch soft)';
    if (moe.router !== 'learned') return no('router', `${soft} learns its dispatch/combine logits Φ; a ${moe.router} router does not apply`, 'use router learned, or dispatch sparse');
    if (moe.unit !== 'token') return no('unit', `${soft} mixes the tokens of each sequence into slots; unit ${moe.unit} does not apply`, 'use unit token, or dispatch sparse');
    if (moe.scope !== 'layer') return no('scope', `${soft} has its own Φ in every MoE layer; scope ${moe.scope} is not lowered for it`, 'use scope layer');
    if (moe.shared > 0) return no('shared', `shared experts are not lowered next to ${soft}`, 'use shared 0');
    if (moe.noise > 0) return no('noise', `${soft} has no router logits to add noise to`, 'use noise 0');
    if (moe.second !== 'top') return no('second', `${soft} has no second expert to sample`, 'use second top');
    if (moe.zloss > 0) return no('zloss', `${soft} has no router z-loss`, 'use zloss 0');
    if (moe.gate !== 'softmax-topk') return no('gate', `${soft} weighs slots by softmaxes of its own; gate ${moe.gate} does not apply`, 'leave gate out');
    if (moe.normalize) return no('normalize', `${soft} has no top-k weights to renormalise`, 'leave normalize out');
    return null;
  }
  if (moe.shared > 0 && (moe.expert !== 'mlp' || moe.activation !== 'gelu')) return no('shared', 'shared experts are GELU MLPs; they are lowered only next to GELU MLP experts', 'use shared 0, or expert mlp with activation gelu');
  if (moe.top > moe.experts) return no('top', `top ${moe.top} is more than the ${moe.experts} experts`, 'pick top <= experts');
  if (moe.unit === 'sequence' && moe.prefix !== null && moe.prefix > s.context) return no('prefix', `prefix ${moe.prefix} is longer than the context ${s.context}`, 'pick a prefix up to the context length');
  return null;
}

/** Separates the noise of a layer's router from a random router's draws. */
const NOISE_SALT = 0x100;

/** Slots per expert: capacity · N·K / E rounded up (all N·K when dropless). */
export function expertCapacity(moe: MoeConfig, tokens: number): number {
  const NK = tokens * moe.top;
  return moe.dropless ? NK : Math.max(1, Math.min(NK, Math.ceil((moe.capacity * NK) / moe.experts)));
}

/** Name of layer l's statistics output. */
export const moeStatsName = (l: number) => `h${l}.moe.stats`;
/** Name of layer l's routing decisions: K expert ids per routed row (token, or sequence). */
export const moeSelName = (l: number) => `h${l}.moe.sel`;

/**
 * The FFN of a GPT-2 graph with MoE layers at moe.layers and the dense MLP elsewhere. The balance
 * and z losses are added to 'train_loss' (not to the validation loss) and their gradients flow
 * into the router and, through it, into x.
 */
export function moeBlock(s: Gpt2Spec, moe: MoeConfig): BlockBuilder {
  const bad = unsupportedMoe(moe, s);
  if (bad) throw new Error(`moe.${bad.field}: ${bad.message}`);
  const dense = denseMlp(s);
  if (moe.dispatch === 'soft') return softMoeBlock(s, moe, dense);
  const moeLayers = new Set(moe.layers);
  const T = s.context;
  const N = s.batch * T;
  const C = s.width;
  const F = s.ffn;
  const E = moe.experts;
  const K = moe.top;
  const NK = N * K;
  const seq = moe.unit === 'sequence';
  const rep = seq ? T : 1;
  const R = N / rep;
  const pool: PoolShape = { tokens: N, seqLen: T, width: C, prefix: Math.min(moe.prefix ?? T, T) };
  const mode: MoeRouterShape['mode'] = moe.router === 'random' ? 'random' : moe.router === 'label' ? 'label' : 'logits';
  const logits = mode === 'logits';
  const cosine = moe.router === 'cosine';
  const trainRouter = moe.router === 'learned' || cosine;
  const cosShape: CosineShape = { rows: R, dim: moe.dim, experts: E };
  const scale = 1 / s.accumulate;
  const routing: MoeRouterShape = {
    tokens: N, experts: E, top: K, rep, mode, score: moe.gate === 'sigmoid' ? 'sigmoid' : 'softmax',
    // top-k then softmax over the kept logits is softmax-topk renormalised.
    normalize: moe.gate === 'topk-softmax' || moe.normalize,
    sampled: moe.second === 'sampled',
    salt: 0x6d6f6500, seqLen: T, // 'moe\0', plus the index of the layer that routes
  };
  const combine: CombineShape = { tokens: N, width: C, top: K };
  const projStd = 0.02 / Math.sqrt(2 * s.layers);

  // Global scope: the first MoE layer routes (its router, its statistics, its aux losses) and every
  // MoE layer reuses that decision; the gate gradients of all of them flow back into that router.
  const global = moe.scope === 'global';
  const first = Math.min(...moe.layers);
  const owner = (l: number) => (global ? first : l);

  /** Layer l's routing: its own, or with global scope the first MoE layer's. */
  const routingOf = (g: Graph, l: number) => {
    const o = owner(l);
    const t = (name: string, shape: number[], dtype: 'f32' | 'u32' = 'f32') => g.tensor(`h${o}.moe.${name}`, shape, 'activation', { dtype });
    if (mode === 'label') g.tensor('labels', [s.batch], 'input', { dtype: 'u32' });
    return {
      owner: o,
      router: logits && !cosine ? param(g, `h.${o}.mlp.router.weight`, [C, E], 'normal', { trainable: trainRouter }) : null,
      // Cosine router: projection C→D, expert embeddings D×E, log inverse temperature (starts at 1: scale e).
      cos: cosine
        ? {
          Wp: param(g, `h.${o}.mlp.router.proj.weight`, [C, moe.dim], 'normal'),
          emb: param(g, `h.${o}.mlp.router.embedding.weight`, [moe.dim, E], 'normal'),
          logScale: param(g, `h.${o}.mlp.router.log_scale`, [1], 'ones', { decay: false }),
          P: t('router.proj', [R, moe.dim]),
        }
        : null,
      pooled: seq ? t('pooled', [R, C]) : null,
      logits: logits ? t('logits', [R, E]) : null,
      // An output (never aliased), so evaluation can read which experts each token took.
      sel: g.tensor(moeSelName(o), [NK], 'output', { dtype: 'u32' }),
      gate: t('gate', [NK]),
      offsets: t('offsets', [E + 1], 'u32'),
      perm: t('perm', [NK], 'u32'),
      pos: t('pos', [NK], 'u32'),
      stats: g.tensor(moeStatsName(o), [statsLength(E)], 'output'),
      route: { ...routing, salt: routing.salt + o },
    };
  };
  const linearExperts = moe.expert === 'linear';
  const act = moe.activation;
  const experts = (g: Graph, l: number) => {
    const p = `h.${l}.mlp.experts`;
    const t = (name: string, shape: number[]) => g.tensor(`h${l}.moe.${name}`, shape, 'activation');
    // A linear expert is one C×C map with a bias; an MLP expert the dense FFN's c_fc, activation, c_proj.
    return {
      W1: linearExperts ? null : param(g, `${p}.c_fc.weight`, [E, C, F], 'normal'),
      b1: linearExperts ? null : param(g, `${p}.c_fc.bias`, [E, F], 'zeros', { decay: false }),
      W2: param(g, linearExperts ? `${p}.proj.weight` : `${p}.c_proj.weight`, [E, linearExperts ? C : F, C], 'normal', { std: projStd }),
      b2: param(g, linearExperts ? `${p}.proj.bias` : `${p}.c_proj.bias`, [E, C], 'zeros', { decay: false }),
      H: linearExperts ? null : t('fc', [NK, F]),
      A: linearExperts ? null : t('act', [NK, F]),
      Y: t('proj', [NK, C]),
      dgate: t('dgate', [NK]),
    };
  };
  /** Shared experts (every token, weight 1): dense GELU MLPs named h.{l}.mlp.shared_experts.{i}. */
  const sharedExperts = (g: Graph, l: number) =>
    Array.from({ length: moe.shared }, (_, i) => {
      const p = `h.${l}.mlp.shared_experts.${i}`;
      return {
        name: p,
        W1: param(g, `${p}.c_fc.weight`, [C, F], 'normal'),
        b1: param(g, `${p}.c_fc.bias`, [F], 'zeros', { decay: false }),
        W2: param(g, `${p}.c_proj.weight`, [F, C], 'normal', { std: projStd }),
        b2: param(g, `${p}.c_proj.bias`, [C], 'zeros', { decay: false }),
        H: g.tensor(`h${l}.moe.shared${i}.fc`, [N, F], 'activation'),
        A: g.tensor(`h${l}.moe.shared${i}.gelu`, [N, F], 'activation'),
      };
    });

  return {
    forward(g, l, x, out) {
      if (!moeLayers.has(l)) return dense.forward(g, l, x, out);
      const r = routingOf(g, l);
      const L = experts(g, l);
      if (r.owner === l) {
        if (r.pooled) g.op('forward', `h${l}.moe.pool`, 'moe_pool_fwd', [pool], [x, r.pooled]);
        if (r.cos) {
          g.op('forward', `h${l}.mlp.router.proj`, 'matmul', [{ m: R, n: moe.dim, k: C }], [r.pooled ?? x, r.cos.Wp, r.cos.P]);
          g.op('forward', `h${l}.mlp.router`, 'moe_cosine_fwd', [cosShape], [r.cos.P, r.cos.emb, r.cos.logScale, r.logits!]);
        } else if (r.logits) {
          g.op('forward', `h${l}.mlp.router`, 'matmul', [{ m: R, n: E, k: C }], [r.pooled ?? x, r.router!, r.logits]);
        }
        if (r.logits && moe.noise > 0) g.op('forward', `h${l}.moe.noise`, 'moe_router_noise', [R * E, moe.noise, r.route.salt + NOISE_SALT, moe.noiseDist], [r.logits, 'rng']);
        const input = mode === 'logits' ? r.logits! : mode === 'random' ? 'rng' : 'labels';
        const sampling = mode === 'logits' && moe.second === 'sampled' && K > 1 ? ['rng'] : [];
        g.op('forward', `h${l}.moe.route`, 'moe_router_fwd', [r.route], [input, ...sampling, r.sel, r.gate]);
        const dispatch: MoeDispatchShape = { tokens: N, experts: E, top: K, rep, capacity: expertCapacity(moe, N), logits, score: routing.score };
        g.op('forward', `h${l}.moe.dispatch`, 'moe_dispatch', [dispatch], [r.sel, ...(r.logits ? [r.logits] : []), r.offsets, r.perm, r.pos, r.stats]);
      }
      if (linearExperts) {
        g.op('forward', `h${l}.mlp.experts.proj`, 'moe_gmm', [{ rows: NK, n: C, k: C, experts: E, gather: { top: K }, bias: true }], [x, L.W2, L.Y, r.offsets, r.perm, L.b2]);
      } else {
        g.op('forward', `h${l}.mlp.experts.c_fc`, 'moe_gmm', [{ rows: NK, n: F, k: C, experts: E, gather: { top: K }, bias: true, activation: act, savePre: true }], [x, L.W1!, L.A!, r.offsets, r.perm, L.b1!, L.H!]);
        g.op('forward', `h${l}.mlp.experts.c_proj`, 'moe_gmm', [{ rows: NK, n: C, k: F, experts: E, bias: true }], [L.A!, L.W2, L.Y, r.offsets, L.b2]);
      }
      g.op('forward', `h${l}.moe.combine`, 'moe_combine', [combine, true], [L.Y, r.gate, r.pos, out]);
      for (const S of sharedExperts(g, l)) {
        g.op('forward', `${S.name}.c_fc`, 'matmul', [{ m: N, n: F, k: C, bias: true }], [x, S.W1, S.H, S.b1]);
        g.op('forward', `${S.name}.gelu`, 'gelu_fwd', [N * F], [S.H, S.A]);
        g.op('forward', `${S.name}.c_proj`, 'matmul', [{ m: N, n: C, k: F, bias: true, accumulate: true }], [S.A, S.W2, out, S.b2]);
      }
    },
    backward(g, l, x, dout, dx) {
      if (!moeLayers.has(l)) return dense.backward(g, l, x, dout, dx);
      const r = routingOf(g, l);
      const L = experts(g, l);
      const t = (name: string, shape: number[]) => g.tensor(`h${l}.moe.${name}`, shape, 'activation');
      const dY = t('dproj', [NK, C]);
      const dX = t('dx_experts', [NK, C]);
      g.op('backward', `h${l}.moe.combine.dx`, 'moe_combine_bwd', [combine], [dout, L.Y, r.gate, r.pos, dY, L.dgate]);
      const proj = linearExperts ? `h${l}.mlp.experts.proj` : `h${l}.mlp.experts.c_proj`;
      const projIn = linearExperts ? x : L.A!;
      const gather = linearExperts ? { gather: { top: K } } : {};
      g.op('backward', `${proj}.dW`, 'moe_wgrad', [{ k: linearExperts ? C : F, n: C, experts: E, rows: NK, ...gather }], [projIn, dY, r.offsets, ...(linearExperts ? [r.perm] : []), `grad.${L.W2}`]);
      g.op('backward', `${proj}.db`, 'moe_bgrad', [C, E, NK], [dY, r.offsets, `grad.${L.b2}`]);
      if (linearExperts) {
        g.op('backward', `${proj}.dx`, 'moe_gmm', [{ rows: NK, n: C, k: C, experts: E, transB: true }], [dY, L.W2, dX, r.offsets]);
      } else {
        const dH = t('dfc', [NK, F]);
        g.op('backward', `${proj}.dx`, 'moe_gmm', [{ rows: NK, n: F, k: C, experts: E, transB: true, actGrad: act }], [dY, L.W2, dH, r.offsets, L.H!]);
        g.op('backward', `h${l}.mlp.experts.c_fc.dW`, 'moe_wgrad', [{ k: C, n: F, experts: E, gather: { top: K }, rows: NK }], [x, dH, r.offsets, r.perm, `grad.${L.W1}`]);
        g.op('backward', `h${l}.mlp.experts.c_fc.db`, 'moe_bgrad', [F, E, NK], [dH, r.offsets, `grad.${L.b1}`]);
        g.op('backward', `h${l}.mlp.experts.c_fc.dx`, 'moe_gmm', [{ rows: NK, n: C, k: F, experts: E, transB: true }], [dH, L.W1!, dX, r.offsets]);
      }
      g.op('backward', `h${l}.moe.unpermute`, 'moe_combine', [combine, false], [dX, r.pos, dx]);
      // Shared experts add their input gradient onto the routed experts'.
      for (const [i, S] of sharedExperts(g, l).entries()) {
        const dA = t(`shared${i}.dgelu`, [N, F]);
        g.op('backward', `${S.name}.c_proj.dx`, 'matmul', [{ m: N, n: F, k: C, transB: true }], [dout, S.W2, dA]);
        g.op('backward', `${S.name}.c_proj.dW`, 'matmul', [{ m: F, n: C, k: N, transA: true, accumulate: true }], [S.A, dout, `grad.${S.W2}`]);
        g.op('backward', `${S.name}.c_proj.db`, 'bias_grad', [N, C], [dout, `grad.${S.b2}`]);
        g.op('backward', `${S.name}.gelu.dx`, 'gelu_bwd', [N * F], [S.H, dA]);
        g.op('backward', `${S.name}.c_fc.dx`, 'matmul', [{ m: N, n: C, k: F, transB: true, accumulate: true }], [dA, S.W1, dx]);
        g.op('backward', `${S.name}.c_fc.dW`, 'matmul', [{ m: C, n: F, k: N, transA: true, accumulate: true }], [x, dA, `grad.${S.W1}`]);
        g.op('backward', `${S.name}.c_fc.db`, 'bias_grad', [N, F], [dA, `grad.${S.b1}`]);
      }
      // The router is differentiated once, at its owner, which the reverse layer order reaches last.
      if (!r.logits || r.owner !== l) return;
      // Gate gradients of the later layers sharing this routing (global scope), in layer order.
      if (global) for (const m of [...moeLayers].filter((m) => m !== l).sort((a, b) => a - b)) {
        g.op('backward', `h${l}.moe.dgate.add_h${m}`, 'scale_add', [NK, 1], [experts(g, m).dgate, L.dgate]);
      }
      // Router: gate, balance and z-loss gradients → logits → Wr (if trained) and x.
      const dlogits = t('dlogits', [R, E]);
      const route = { ...r.route, balance: moe.balance * scale, zloss: moe.zloss * scale };
      g.op('backward', `h${l}.moe.route.dx`, 'moe_router_bwd', [route], [r.logits, r.sel, L.dgate, r.stats, dlogits]);
      const rin = r.pooled ?? x;
      // A linear router maps rin (C) to logits (E) by Wr; a cosine router to P (D) by Wp, then cosines.
      let dOut = dlogits;
      let W = r.router!;
      let width = E;
      if (r.cos) {
        const dP = t('router.dproj', [R, moe.dim]);
        const cosIn = [r.cos.P, r.cos.emb, r.cos.logScale, dlogits];
        g.op('backward', `h${l}.mlp.router.dproj`, 'moe_cosine_dp', [cosShape], [...cosIn, dP]);
        g.op('backward', `h${l}.mlp.router.embedding.dW`, 'moe_cosine_demb', [cosShape], [...cosIn, `grad.${r.cos.emb}`]);
        g.op('backward', `h${l}.mlp.router.log_scale.d`, 'moe_cosine_dscale', [cosShape], [...cosIn, `grad.${r.cos.logScale}`]);
        [dOut, W, width] = [dP, r.cos.Wp, moe.dim];
      }
      if (trainRouter) g.op('backward', `${W.replace(/\.weight$/, '')}.dW`, 'matmul', [{ m: C, n: width, k: R, transA: true, accumulate: true }], [rin, dOut, `grad.${W}`]);
      if (r.pooled) {
        const dpooled = t('dpooled', [R, C]);
        g.op('backward', `h${l}.mlp.router.dx`, 'matmul', [{ m: R, n: C, k: width, transB: true }], [dOut, W, dpooled]);
        g.op('backward', `h${l}.moe.pool.dx`, 'moe_pool_bwd', [pool], [dpooled, dx]);
      } else {
        g.op('backward', `h${l}.mlp.router.dx`, 'matmul', [{ m: N, n: C, k: width, transB: true, accumulate: true }], [dOut, W, dx]);
      }
      if (moe.balance > 0 || moe.zloss > 0) g.op('backward', `h${l}.moe.aux_loss`, 'moe_aux_loss', [moe.balance, moe.zloss, scale], [r.stats, 'train_loss']);
    },
  };
}

/**
 * Soft MoE FFN layers (Puigcerver et al. 2023), per sequence of T tokens (notation in
 * reference/moe-soft.ts): logits L = x·Φ (Φ = h.{l}.mlp.soft.phi, C × E·S), dispatch weights D
 * (softmax over the sequence's tokens), slot inputs X̃ = Dᵀ·x, the same stacked experts as the
 * sparse layers over the E·S slots of every sequence (grouped matmuls, slot rows expert-contiguous),
 * combine weights W (softmax over slots), output W·Ỹ. Every expert sees every sequence's slots.
 * Not causal: a token's output mixes slots computed from every token of its sequence, later ones
 * included (`moec check` warns). The statistics output keeps the sparse layout (softStatsReference).
 */
function softMoeBlock(s: Gpt2Spec, moe: MoeConfig, dense: BlockBuilder): BlockBuilder {
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

/**
 * Parameters one token uses, from a laid-out graph: every parameter, with each MoE layer's stacked
 * expert tensors (leading dimension E) counted for K of their E experts.
 */
export function activeParams(g: Graph, moe: MoeConfig | null): number {
  let n = 0;
  for (const t of g.tensors.values()) {
    if (t.kind !== 'param' || !/^params(\.\d+)?$/.test(t.region ?? '') || t.name === t.region) continue;
    const count = t.shape.reduce((a, b) => a * b, 1);
    // Soft MoE: every token's output draws on every expert.
    n += moe && moe.dispatch !== 'soft' && /^h\.\d+\.mlp\.experts\./.test(t.name) ? (count / moe.experts) * Math.min(moe.top, moe.experts) : count;
  }
  return n;
}
