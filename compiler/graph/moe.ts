// Mixture-of-Experts FFN layers in the GPT-2 training graph (issue 5). An MoE layer routes each
// token (or each sequence) to K of E experts, each with the dense FFN's shape:
//
//   [pool] → router logits (x·Wr) [+ noise] → router (top-k, gates) → dispatch (counts, capacity,
//   prefix sum, permutation) → grouped c_fc + activation → grouped c_proj → combine (gated sum per
//   token) [+ shared experts]
//
// and the backward of each step. The stacked experts (HF-like names, grouped matmuls) are
// graph/moe-experts.ts; shared experts are dense GELU MLPs h.{l}.mlp.shared_experts.{i}.c_fc/c_proj.
// The router's parameters are its plug-in's (compiler/routing; learned: h.{l}.mlp.router.weight
// (C, E), no bias, as in compiler/frontend/params.ts). Each routing
// layer writes a small statistics output, h{l}.moe.stats (see STAT in reference/moe.ts), which the
// host reads only when it wants it.
//
// Sequence routing pools the mean of the sequence's hidden states at this layer. With the whole
// sequence that mean sees later tokens, so an early token's output depends on the future (not
// causal); `unit sequence(prefix P)` pools the first P tokens only, so the decision depends on
// tokens < P alone: causal for every token from position P − 1 on.
//
// Router kinds are plug-ins (compiler/routing): a scoring router (learned, frozen, cosine) adds the
// ops from the routing input to the logits and back, a rule router (random, label) names the input
// its selection rule reads; this file builds what they share. Training options of scoring routers:
// Gaussian or uniform U(0, noise) noise on the logits (noisy top-k), GShard's sampled second expert.
// The slot layout (assignments, slots, per-expert offsets) is compiler/routing/slots.ts.
//
// Soft MoE (`dispatch soft`, Puigcerver et al. 2023) is its own block (graph/moe-soft.ts): no
// router, top-k or dispatch; a learned Φ mixes each sequence's tokens into E·S slots the same stacked
// experts process, and mixes the slots back per token. It is not causal (see softMoeBlock).
//
// Global scope: the first MoE layer routes and every MoE layer reuses its decision (one router,
// one set of statistics and auxiliary losses); the gate gradients of all layers flow into it.
import { routedWidth, sharedWidth } from '../frontend/expert-width.js';
import type { MoeConfig } from '../frontend/types.js';
import { moeCombine, moeCombineBackward, type CombineShape } from '../kernels/moe-combine.js';
import { moeDispatch, type MoeDispatchShape } from '../kernels/moe-dispatch.js';
import { moeAuxLoss, moeRouterBackward } from '../kernels/moe-router.js';
import { moePoolBackward, moePoolForward } from '../kernels/moe-pool.js';
import { moeRouterNoise } from '../kernels/moe-noise.js';
import { type MoeRouterShape, statsLength } from '../reference/moe.js';
import { gates, routerForward, routerMode, routers } from '../routing/index.js';
import { assignmentCount, type SlotLayout } from '../routing/slots.js';
import { routerChoiceOf } from '../routing/choice.js';
import { poolOf, tokensPerRow, unitOf } from '../routing/unit.js';
import { type BlockBuilder, denseMlp, type Gpt2Spec, param } from './gpt2.js';
import type { Graph } from './ir.js';
import { moeBiasLoadName, moeBiasName, moeSelName, moeStatsName, moeSummaryName, moeWindowName } from './moe-outputs.js';
import { type ExpertRows, expertParams, expertsBackward, expertsForward } from './moe-experts.js';
import { softMoeBlock } from './moe-soft.js';
import { expertSlots } from '../reference/moe-expert-choice.js';
import { expertChoiceOf, expertChoiceShape, expertsPerToken } from '../routing/expert-choice.js';
import { moeAuxParts, moeLoadSummary, moeWindowAdd } from '../kernels/moe-diagnostics.js';
import { moeBiasLoad, moeBiasUpdate } from '../kernels/moe-bias.js';
import { moeSeqBalance } from '../kernels/moe-seq-balance.js';
import { summaryLength, windowLength } from '../reference/moe-diagnostics.js';
import { biasGrad, fill, geluBackward, geluForward, scaleAdd } from '../kernels/elementwise.js';
import { matmul } from '../kernels/matmul.js';
import { moeExpertChoiceDispatch, moeExpertChoiceRouter, moeExpertChoiceStats } from '../kernels/moe-expert-choice.js';

export { moeSelName, moeStatsName } from './moe-outputs.js';


/** Separates the noise of a layer's router from a random router's draws. */
const NOISE_SALT = 0x100;

/** Slots per expert: capacity · N·K / E rounded up (all N·K when dropless). */
export function expertCapacity(moe: MoeConfig, tokens: number): number {
  const NK = assignmentCount({ top: moe.top }, tokens);
  return moe.dropless ? NK : Math.max(1, Math.min(NK, Math.ceil((moe.capacity * NK) / moe.experts)));
}

/**
 * The FFN of a GPT-2 graph with MoE layers at moe.layers and the dense MLP elsewhere. The balance
 * and z losses are added to 'train_loss' (not to the validation loss) and their gradients flow
 * into the router and, through it, into x. Settings it cannot build are refused before it runs, by
 * the lowering rules of the validation registry (compiler/rules, run by compileTrial).
 */
export function moeBlock(s: Gpt2Spec, moe: MoeConfig): BlockBuilder {
  const dense = denseMlp(s);
  if (moe.dispatch === 'soft') return softMoeBlock(s, moe, dense);
  const moeLayers = new Set(moe.layers);
  const T = s.context;
  const N = s.batch * T;
  const C = s.width;
  const F = routedWidth(moe, s.ffn);
  const Fs = sharedWidth(moe, s.ffn);
  const E = moe.experts;
  const gate = gates[moe.gate];
  // Expert choice (routing/expert-choice.ts): one assignment per (token, expert), E·c slot rows.
  const ec = expertChoiceOf(moe) ? expertChoiceShape(moe, s, gate.score) : null;
  const K = ec ? E : moe.top;
  const slots: SlotLayout = { top: K };
  const NK = assignmentCount(slots, N);
  const slotRows = ec ? E * expertSlots(ec) : NK;
  const unit = unitOf(moe);
  const rep = tokensPerRow(unit, T);
  const R = N / rep;
  const pool = poolOf(unit, N, T, C);
  // The router's settings, checked against its kind once (a label router without its label throws).
  const router = routers[routerChoiceOf(moe).kind];
  const mode = routerMode(router);
  const scale = 1 / s.accumulate;
  // Auxiliary-loss-free balancing (kernels/moe-bias.ts): the bias is state of the routing layer.
  const biasRate = moe.biasRate ?? 0;
  const biased = biasRate > 0;
  const routing: MoeRouterShape = {
    tokens: N, experts: E, top: K, rep, mode, score: gate.score,
    normalize: ec ? false : gate.normalize(moe),
    sampled: moe.second === 'sampled',
    salt: 0x6d6f6500, seqLen: T, // 'moe\0', plus the index of the layer that routes
    ...(biased ? { biased: true } : {}),
  };
  const combine: CombineShape = { tokens: N, width: C, top: K };
  // DeepSeek-V3's sequence-wise balance loss (kernels/moe-seq-balance.ts); token routing, scoring routers.
  const perSequence = moe.balanceOver === 'sequence' && router.scores && !ec;
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
    if (!router.scores) router.declareInput?.(g, s);
    return {
      owner: o,
      scorer: router.scores ? router.scorer({ g, moe, owner: o, rows: R, width: C, experts: E, t: (name, shape) => t(name, shape) }) : null,
      pooled: pool ? t('pooled', [R, C]) : null,
      logits: router.scores ? t('logits', [R, E]) : null,
      // An output (never aliased), so evaluation can read which experts each token took.
      sel: g.tensor(moeSelName(o), [NK], 'output', { dtype: 'u32' }),
      // Expert choice: the router's (token, expert) pairs; sel holds the kept ones alone.
      routeSel: ec ? t('pairs', [NK], 'u32') : moeSelName(o),
      gate: t('gate', [NK]),
      // The dispatch table: expert e's slots offsets[e] .. offsets[e+1], slot -> assignment (perm),
      // assignment -> slot (pos); assignments per token as `slots` says.
      offsets: t('offsets', [E + 1], 'u32'),
      perm: t('perm', [slotRows], 'u32'),
      pos: t('pos', [NK], 'u32'),
      stats: g.tensor(moeStatsName(o), [statsLength(E)], 'output'),
      seqCounts: perSequence ? t('seq_counts', [N / T, E]) : null,
      // Optimiser-like state (own buffers, never aliased): the bias, and the step's load it moves by.
      bias: biased ? g.tensor(moeBiasName(o), [E], 'optimizer') : null,
      load: biased ? g.tensor(moeBiasLoadName(o), [E], 'optimizer') : null,
      window: g.tensor(moeWindowName(o), [windowLength(E)], 'output'),
      route: { ...routing, salt: routing.salt + o },
    };
  };
  const linearExperts = moe.expert === 'linear';
  const experts = (g: Graph, l: number) => {
    const t = (name: string, shape: number[]) => g.tensor(`h${l}.moe.${name}`, shape, 'activation');
    return {
      ...expertParams(g, s, moe, l),
      H: linearExperts ? null : t('fc', [slotRows, F]),
      A: linearExperts ? null : t('act', [slotRows, F]),
      Y: t('proj', [slotRows, C]),
      dgate: t('dgate', [NK]),
    };
  };
  /** The experts' rows: every kept assignment's slot, gathering its token's row of x. */
  const rowsOf = (x: string, r: { offsets: string; perm: string }, L: { H: string | null; A: string | null; Y: string }): ExpertRows =>
    ({ rows: slotRows, input: x, offsets: r.offsets, gather: { slots, perm: r.perm }, H: L.H, A: L.A, Y: L.Y });
  /** Shared experts (every token, weight 1): dense GELU MLPs named h.{l}.mlp.shared_experts.{i}. */
  const sharedExperts = (g: Graph, l: number) =>
    Array.from({ length: moe.shared }, (_, i) => {
      const p = `h.${l}.mlp.shared_experts.${i}`;
      return {
        name: p,
        W1: param(g, `${p}.c_fc.weight`, [C, Fs], 'normal'),
        b1: param(g, `${p}.c_fc.bias`, [Fs], 'zeros', { decay: false }),
        W2: param(g, `${p}.c_proj.weight`, [Fs, C], 'normal', { std: projStd }),
        b2: param(g, `${p}.c_proj.bias`, [C], 'zeros', { decay: false }),
        H: g.tensor(`h${l}.moe.shared${i}.fc`, [N, Fs], 'activation'),
        A: g.tensor(`h${l}.moe.shared${i}.gelu`, [N, Fs], 'activation'),
      };
    });

  return {
    routing: [...moeLayers].filter((l) => owner(l) === l).sort((a, b) => a - b).map((layer) => ({ layer, experts: E, selPerToken: K, ...(ec ? { expertsPerToken: expertsPerToken(moe, T, s.batch) } : {}) })),
    forward(g, l, x, out) {
      if (!moeLayers.has(l)) return dense.forward(g, l, x, out);
      const r = routingOf(g, l);
      const L = experts(g, l);
      if (r.owner === l) {
        if (r.pooled) g.op('forward', `h${l}.moe.pool`, moePoolForward, [pool!], { x, pooled: r.pooled });
        r.scorer?.forward(g, l, r.pooled ?? x, r.logits!);
        if (r.logits && moe.noise > 0) g.op('forward', `h${l}.moe.noise`, moeRouterNoise, [R * E, moe.noise, r.route.salt + NOISE_SALT, moe.noiseDist], { logits: r.logits, rng: 'rng' });
        if (ec) {
          g.op('forward', `h${l}.moe.route`, moeExpertChoiceRouter, [ec], { logits: r.logits!, sel: r.routeSel, gate: r.gate });
          g.op('forward', `h${l}.moe.dispatch`, moeExpertChoiceDispatch, [ec], { gate: r.gate, offsets: r.offsets, perm: r.perm, pos: r.pos, kept: r.sel });
          g.op('forward', `h${l}.moe.stats`, moeExpertChoiceStats, [ec], { logits: r.logits!, gate: r.gate, pos: r.pos, stats: r.stats });
        } else {
          // The router's input: its logits, or what its rule reads (binding 0, named by the rule).
          const input = { [routerForward.bindings(r.route)[0]!.name]: router.scores ? r.logits! : router.input };
          const sampling: Record<string, string> = router.scores && moe.second === 'sampled' && K > 1 ? { rng: 'rng' } : {};
          g.op('forward', `h${l}.moe.route`, routerForward, [r.route], { ...input, ...(r.bias ? { bias: r.bias } : {}), ...sampling, sel: r.sel, gate: r.gate });
          if (r.load) g.op('zero', `h${l}.moe.bias_load.zero`, fill, [E], { x: r.load });
          const dispatch: MoeDispatchShape = { tokens: N, experts: E, top: K, rep, capacity: expertCapacity(moe, N), logits: router.scores, score: routing.score };
          g.op('forward', `h${l}.moe.dispatch`, moeDispatch, [dispatch], { sel: r.sel, ...(r.logits ? { logits: r.logits } : {}), offsets: r.offsets, perm: r.perm, pos: r.pos, stats: r.stats });
          // After the dispatch: it replaces the batch balance figure of the statistics with the sequence-wise loss.
          if (r.seqCounts) g.op('forward', `h${l}.moe.seq_balance`, moeSeqBalance, [{ tokens: N, experts: E, top: K, seqLen: T, score: gate.score }], { sel: r.sel, logits: r.logits!, seqcounts: r.seqCounts, stats: r.stats });
        }
      }
      expertsForward(g, l, s, moe, L, rowsOf(x, r, L));
      g.op('forward', `h${l}.moe.combine`, moeCombine, [combine, true], { Y: L.Y, gate: r.gate, pos: r.pos, out });
      for (const S of sharedExperts(g, l)) {
        g.op('forward', `${S.name}.c_fc`, matmul, [{ m: N, n: Fs, k: C, bias: true }], { A: x, B: S.W1, C: S.H, bias: S.b1 });
        g.op('forward', `${S.name}.gelu`, geluForward, [N * Fs], { h: S.H, g: S.A });
        g.op('forward', `${S.name}.c_proj`, matmul, [{ m: N, n: C, k: Fs, bias: true, accumulate: true }], { A: S.A, B: S.W2, C: out, bias: S.b2 });
      }
    },
    backward(g, l, x, dout, dx) {
      if (!moeLayers.has(l)) return dense.backward(g, l, x, dout, dx);
      const r = routingOf(g, l);
      const L = experts(g, l);
      const t = (name: string, shape: number[]) => g.tensor(`h${l}.moe.${name}`, shape, 'activation');
      const dY = t('dproj', [slotRows, C]);
      const dX = t('dx_experts', [slotRows, C]);
      g.op('backward', `h${l}.moe.combine.dx`, moeCombineBackward, [combine], { dout, Y: L.Y, gate: r.gate, pos: r.pos, dY, dgate: L.dgate });
      expertsBackward(g, l, s, moe, L, rowsOf(x, r, L), dY, dX);
      g.op('backward', `h${l}.moe.unpermute`, moeCombine, [combine, false], { Y: dX, pos: r.pos, out: dx });
      // Shared experts add their input gradient onto the routed experts'.
      for (const [i, S] of sharedExperts(g, l).entries()) {
        const dA = t(`shared${i}.dgelu`, [N, Fs]);
        g.op('backward', `${S.name}.c_proj.dx`, matmul, [{ m: N, n: Fs, k: C, transB: true }], { A: dout, B: S.W2, C: dA });
        g.op('backward', `${S.name}.c_proj.dW`, matmul, [{ m: Fs, n: C, k: N, transA: true, accumulate: true }], { A: S.A, B: dout, C: `grad.${S.W2}` });
        g.op('backward', `${S.name}.c_proj.db`, biasGrad, [N, C], { dy: dout, db: `grad.${S.b2}` });
        g.op('backward', `${S.name}.gelu.dx`, geluBackward, [N * Fs], { h: S.H, d: dA });
        g.op('backward', `${S.name}.c_fc.dx`, matmul, [{ m: N, n: C, k: Fs, transB: true, accumulate: true }], { A: dA, B: S.W1, C: dx });
        g.op('backward', `${S.name}.c_fc.dW`, matmul, [{ m: C, n: Fs, k: N, transA: true, accumulate: true }], { A: x, B: dA, C: `grad.${S.W1}` });
        g.op('backward', `${S.name}.c_fc.db`, biasGrad, [N, Fs], { dy: dA, db: `grad.${S.b1}` });
      }
      // The load diagnostics' window takes this micro-batch's statistics (training only: backward phase).
      if (r.owner === l) {
        g.op('backward', `h${l}.moe.window.add`, moeWindowAdd, [E], { stats: r.stats, window: r.window });
        g.op('stats', `h${l}.moe.summary`, moeLoadSummary, [E], { window: r.window, summary: g.tensor(moeSummaryName(l), [summaryLength(E)], 'output') });
      }
      // The router is differentiated once, at its owner, which the reverse layer order reaches last.
      if (!r.scorer || !router.scores || r.owner !== l) return;
      // Gate gradients of the later layers sharing this routing (global scope), in layer order.
      if (global) for (const m of [...moeLayers].filter((m) => m !== l).sort((a, b) => a - b)) {
        g.op('backward', `h${l}.moe.dgate.add_h${m}`, scaleAdd, [NK, 1], { x: experts(g, m).dgate, acc: L.dgate });
      }
      // The step's load counts training micro-batches only (evaluation runs the forward alone); the
      // bias moves once per optimiser step, after the micro-batches.
      if (r.bias && r.load) {
        g.op('backward', `h${l}.moe.bias_load`, moeBiasLoad, [E], { stats: r.stats, load: r.load });
        g.op('update', `h${l}.moe.bias_update`, moeBiasUpdate, [E, biasRate], { load: r.load, bias: r.bias });
      }
      // Router: gate, balance and z-loss gradients → logits → the scorer's weights (if trained) and x.
      const dlogits = t('dlogits', [R, E]);
      const route = { ...r.route, balance: moe.balance * scale, zloss: moe.zloss * scale, ...(r.seqCounts ? { balanceOver: 'sequence' as const } : {}) };
      g.op('backward', `h${l}.moe.route.dx`, moeRouterBackward, [route], { logits: r.logits!, sel: r.routeSel, dgate: L.dgate, stats: r.stats, ...(r.seqCounts ? { seqcounts: r.seqCounts } : {}), dlogits });
      const rin = r.pooled ?? x;
      const { dOut, W, width } = r.scorer.backward(g, l, dlogits);
      if (router.trained) g.op('backward', `${W.replace(/\.weight$/, '')}.dW`, matmul, [{ m: C, n: width, k: R, transA: true, accumulate: true }], { A: rin, B: dOut, C: `grad.${W}` });
      if (r.pooled) {
        const dpooled = t('dpooled', [R, C]);
        g.op('backward', `h${l}.mlp.router.dx`, matmul, [{ m: R, n: C, k: width, transB: true }], { A: dOut, B: W, C: dpooled });
        g.op('backward', `h${l}.moe.pool.dx`, moePoolBackward, [pool!], { dpooled, dx });
      } else {
        g.op('backward', `h${l}.mlp.router.dx`, matmul, [{ m: N, n: C, k: width, transB: true, accumulate: true }], { A: dOut, B: W, C: dx });
      }
      if (moe.balance > 0 || moe.zloss > 0) g.op('backward', `h${l}.moe.aux_loss`, moeAuxLoss, [moe.balance, moe.zloss, scale], { stats: r.stats, acc: 'train_loss' });
      if (moe.balance > 0 || moe.zloss > 0) g.op('backward', `h${l}.moe.aux_parts`, moeAuxParts, [moe.balance, moe.zloss, scale], { stats: r.stats, bal: 'train_balance', zl: 'train_z' });
    },
  };
}

/**
 * Parameters one token uses, from a laid-out graph: every parameter, with each MoE layer's stacked
 * expert tensors (leading dimension E) counted for the experts a token uses on average
 * (`expertsPerToken`; `s` the micro-batch, which expert choice over the batch needs).
 */
export function activeParams(g: Graph, moe: MoeConfig | null, s?: Pick<Gpt2Spec, 'batch' | 'context'>): number {
  let n = 0;
  const k = moe ? expertsPerToken(moe, s?.context ?? 1, s?.batch) : 0;
  for (const t of g.tensors.values()) {
    if (t.kind !== 'param' || !/^params(\.\d+)?$/.test(t.region ?? '') || t.name === t.region) continue;
    const count = t.shape.reduce((a, b) => a * b, 1);
    n += moe && /^h\.\d+\.mlp\.experts\./.test(t.name) ? (count / moe.experts) * k : count;
  }
  return Math.round(n);
}
