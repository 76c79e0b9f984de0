import type { TrialConfig } from '../frontend/types.js';
import { type BlockBuilder, buildGpt2Graph, type Gpt2Spec } from '../graph/gpt2.js';
import { moeBlock, unsupportedMoe } from '../graph/moe.js';
import { buildPatchGraph, PATCH_EXPERTS, PATCH_ROUTER, type PatchGraphSpec } from '../graph/patches.js';
import { patchExpertInit, patchRouterOptimizer, patchTrainBatch, unsupportedPatch } from './patch-settings.js';
import { elementBytes, type Graph, numel, type Op, type Tensor } from '../graph/ir.js';
import { alignFloats, type LayoutOptions, layoutParams, type ParamLayout, regionAt, regionName } from '../graph/layout.js';
import type { RowKernel } from '../kernels/layernorm.js';
import { PlanBuilder } from '../plan/builder.js';
import type { Plan, PlanBuffer } from '../plan/types.js';
import { gradNormKernels } from '../kernels/gradnorm.js';
import { KernelCache, type LoweringOptions, registerKernel } from './kernels.js';
import { sgdKernel } from '../kernels/sgd.js';
import { ngdKernel } from '../kernels/ngd.js';
import { type CastSegment, castF16Kernel } from '../kernels/cast.js';

registerKernel('sgd', (n, offset: number, count: number, wd: number, clip: number) => sgdKernel(n, offset, count, wd, clip));
registerKernel('ngd', (n, offset: number, blocks: number, size: number, wd: number) => ngdKernel(n, offset, blocks, size, wd));
registerKernel('cast_f16', (n, segments: CastSegment[]) => castF16Kernel(n, segments));
import { lifetimes, type MemoryPlan, planMemory } from './memory.js';

export interface CompiledTrial {
  plan: Plan;
  graph: Graph;
  layout: ParamLayout;
  memory: MemoryPlan;
  /** For the patch model: batch = samples, context = patches, width = patch dimension, ffn = filters. */
  spec: Gpt2Spec;
  /** Set when the trial is the patch model of the synthetic cluster task (not a language model). */
  patch?: PatchGraphSpec;
  /** What the lowering was told about the adapter (empty: a portable plan). */
  lowering?: LoweringOptions;
}

/** The programs a training plan holds, as sequences of graph phases. */
export const programPhases = {
  /** One optimiser step from one micro-batch: the common case, one submit per step. */
  train_step: ['zero', 'forward', 'backward', 'update'],
  /** With gradient accumulation: zero_grads, then micro_step per micro-batch, then update. */
  zero_grads: ['zero'],
  micro_step: ['forward', 'backward'],
  update: ['update'],
  /** Forward and loss on a validation batch, adding {Σ loss, tokens} into eval_sum. */
  eval_step: ['forward', 'eval'],
  /** Rewrites the f16 weight copies from the parameters (after the host writes them). */
  refresh_shadows: ['shadow'],
} as const;

export function gpt2SpecOf(c: TrialConfig, name = 'trial'): Gpt2Spec {
  const m = c.model;
  const t = c.train;
  return {
    name, layers: m.layers, width: m.width, heads: m.heads, ffn: m.ffn, vocab: m.vocab, context: m.context, dropout: m.dropout,
    batch: t.batch, accumulate: t.accumulate, betas: t.betas, eps: t.eps, wd: t.optimizer === 'adam' ? 0 : t.wd, clip: t.clip,
    optimizer: t.optimizer === 'sgd' || t.optimizer === 'ngd' ? t.optimizer : 'adamw', precision: t.precision,
  };
}

const roleOf: Record<Tensor['kind'], PlanBuffer['role']> = {
  param: 'param', grad: 'grad', optimizer: 'optimizer', activation: 'activation', input: 'input', uniform: 'uniform', output: 'output', shadow: 'param',
};

/** For optimizer ngd: the parameter normalised per block (its first dimension), and those plain SGD updates. */
export interface NgdTargets {
  blocks: string;
  plain: string[];
}

/** Where a parameter lives: its region's index and its offset (floats) inside the region. */
function placeOf(g: Graph, layout: ParamLayout, name: string): { k: number; offset: number } {
  const at = layout.offsets.get(name);
  if (at === undefined || g.get(name).trainable === false) throw new Error(`graph ${g.name}: '${name}' is not a trainable parameter`);
  const k = regionAt(layout, at);
  return { k, offset: at - layout.regions[k]!.start };
}

/** An op's name for region k: region 0 keeps the unsplit name, so plans of one region do not change. */
const inRegion = (name: string, k: number) => (k === 0 ? name : `${name}.${k}`);

/**
 * Declares each region's whole-region tensors (params, grads and, with `moments`, adam.m / adam.v),
 * zeroes the gradients and the loss, and adds the global gradient norm when clipping: one partial
 * pass per gradient region into its slice of one partials buffer, one total over all of it.
 */
function addRegions(g: Graph, s: Gpt2Spec, layout: ParamLayout, moments: boolean, routerUniform = false): void {
  layout.regions.forEach((r, k) => {
    const params = regionName('params', k);
    const grads = regionName('grads', k);
    g.tensor(params, [r.floats], 'param', { region: params, offset: 0 });
    g.tensor(grads, [r.floats], 'grad', { region: grads, offset: 0 });
    if (moments) {
      g.tensor(regionName('adam.m', k), [r.floats], 'optimizer');
      g.tensor(regionName('adam.v', k), [r.floats], 'optimizer');
    }
  });
  // The patch model's router has its own rate (declared here to keep the plan's buffer order).
  if (routerUniform) g.tensor('adam.router', [4], 'uniform');
  layout.regions.forEach((r, k) => g.op('zero', k === 0 ? 'grads.zero' : `grads.${k}.zero`, 'fill', [r.floats], [regionName('grads', k)]));
  g.op('zero', 'train_loss.zero', 'fill', [1], ['train_loss']);
  if (s.clip <= 0) return;
  if (layout.regions.length === 1) {
    // Σ g² over the whole gradient region (padding is zero), then clipping inside AdamW.
    const total = layout.total;
    const partials = g.tensor('grad_norm.partials', [gradNormKernels('probe', { count: total }).partials], 'activation');
    g.op('update', 'grad_norm.partial', 'gradnorm_partial', [total], ['grads', partials]);
    g.op('update', 'grad_norm', 'gradnorm_total', [total], [partials, 'grad_norm']);
    return;
  }
  // Each region's partials start on a 256-byte boundary (a legal binding offset); the gaps are zeroed.
  const counts = layout.regions.map((r) => gradNormKernels('probe', { count: r.floats }).partials);
  const starts = counts.map((_, k) => counts.slice(0, k).reduce((a, n) => a + alignFloats(n), 0));
  const P = starts[starts.length - 1]! + counts[counts.length - 1]!;
  const partials = g.tensor('grad_norm.partials', [P], 'activation');
  g.op('update', 'grad_norm.partials.zero', 'fill', [P], [partials]);
  layout.regions.forEach((r, k) => {
    g.op('update', inRegion('grad_norm.partial', k), 'gradnorm_partial', [r.floats], [regionName('grads', k), g.rowsOf(partials, starts[k]!, counts[k]!, 1)]);
  });
  // The total kernel sums ceil(count / chunk) partials (chunk: one first-stage workgroup's elements):
  // a count of P whole chunks makes it sum all P.
  const chunk = 256 * 16;
  if (gradNormKernels('probe', { count: P * chunk }).partials !== P) throw new Error('graph: the gradient norm\'s total does not cover its partials');
  g.op('update', 'grad_norm', 'gradnorm_total', [P * chunk], [partials, 'grad_norm']);
}

/** Adds the region tensors, the zeroing ops and the AdamW, SGD or NGD update to a graph whose parameters are laid out. */
function addOptimizer(g: Graph, s: Gpt2Spec, layout: ParamLayout, ngd?: NgdTargets): void {
  const sgd = s.optimizer === 'sgd';
  if (s.optimizer === 'ngd' && (!ngd || s.clip > 0)) throw new Error(`graph ${g.name}: ngd needs its expert blocks and clip 0`);
  // SGD and NGD keep no state beyond the step: no moments (checkpoints then hold only weights).
  addRegions(g, s, layout, !sgd && !ngd);
  if (ngd) {
    addNgd(g, s, layout, ngd);
    return;
  }
  for (const r of layout.ranges) {
    const [params, grads, m, v] = ['params', 'grads', 'adam.m', 'adam.v'].map((b) => regionName(b, r.region));
    if (sgd) {
      g.op('update', inRegion(r.decay ? 'sgd.decay' : 'sgd.nodecay', r.region), 'sgd', [r.offset, r.count, r.decay ? s.wd : 0, s.clip], [params!, grads!, 'adam', ...(s.clip > 0 ? ['grad_norm'] : [])]);
      continue;
    }
    const cfg = { beta1: s.betas[0], beta2: s.betas[1], eps: s.eps, weightDecay: r.decay ? s.wd : 0 };
    const name = inRegion(r.decay ? 'adamw.decay' : 'adamw.nodecay', r.region);
    if (s.clip > 0) g.op('update', name, 'adamw_clip', [r.offset, r.count, cfg, s.clip], [params!, grads!, m!, v!, 'adam', 'grad_norm']);
    else g.op('update', name, 'adamw', [r.offset, r.count, cfg], [params!, grads!, m!, v!, 'adam']);
  }
}

/** NGD per block of one parameter (W_m ← W_m − lr·g_m/‖g_m‖), plain SGD for the others; every tensor named is trainable and decayed alike. */
function addNgd(g: Graph, s: Gpt2Spec, layout: ParamLayout, ngd: NgdTargets): void {
  const bufs = (k: number) => [regionName('params', k), regionName('grads', k), 'adam'];
  const [blocks, ...rest] = g.get(ngd.blocks).shape;
  const size = rest.reduce((a, b) => a * b, 1);
  const p = placeOf(g, layout, ngd.blocks);
  g.op('update', 'ngd.blocks', 'ngd', [p.offset, blocks!, size, s.wd], bufs(p.k));
  for (const name of ngd.plain) {
    const q = placeOf(g, layout, name);
    g.op('update', `sgd.${name}`, 'sgd', [q.offset, numel(g.get(name).shape), s.wd, 0], bufs(q.k));
  }
}

/**
 * The patch model's update (Chen et al. 2022 train its two parts differently): the experts' filters
 * by `optimizer` (NGD per expert, SGD or AdamW) on the 'adam' uniform, the learned router by its own
 * optimiser on the 'adam.router' uniform, whose rate the runtime writes as lr × routerLrScale.
 * Clipping, when on, is global over both (the grad_norm the sgd and adamw_clip kernels read).
 */
function addPatchOptimizer(g: Graph, s: Gpt2Spec, layout: ParamLayout, router: { name: string; optimizer: 'sgd' | 'adamw' } | null): void {
  if (s.optimizer === 'ngd' && s.clip > 0) throw new Error(`graph ${g.name}: ngd needs clip 0`);
  addRegions(g, s, layout, s.optimizer === 'adamw' || router?.optimizer === 'adamw', router !== null);
  const clip = s.clip > 0 ? ['grad_norm'] : [];
  const update = (name: string, optimizer: 'adamw' | 'sgd' | 'ngd', uniform: string, opName: string) => {
    const { k, offset } = placeOf(g, layout, name);
    const [params, grads, m, v] = ['params', 'grads', 'adam.m', 'adam.v'].map((b) => regionName(b, k)) as [string, string, string, string];
    const [first, ...rest] = g.get(name).shape;
    const count = numel(g.get(name).shape);
    if (optimizer === 'ngd') g.op('update', opName, 'ngd', [offset, first!, rest.reduce((a, b) => a * b, 1), s.wd], [params, grads, uniform]);
    else if (optimizer === 'sgd') g.op('update', opName, 'sgd', [offset, count, s.wd, s.clip], [params, grads, uniform, ...clip]);
    else {
      const cfg = { beta1: s.betas[0], beta2: s.betas[1], eps: s.eps, weightDecay: s.wd };
      if (s.clip > 0) g.op('update', opName, 'adamw_clip', [offset, count, cfg, s.clip], [params, grads, m, v, uniform, ...clip]);
      else g.op('update', opName, 'adamw', [offset, count, cfg], [params, grads, m, v, uniform]);
    }
  };
  const experts = s.optimizer ?? 'adamw';
  update(PATCH_EXPERTS, experts, 'adam', experts === 'ngd' ? 'ngd.blocks' : `${experts}.${PATCH_EXPERTS}`);
  if (router) update(router.name, router.optimizer, 'adam.router', `${router.optimizer}.${router.name}`);
}

/**
 * Lays out the f16 weight copies ('shadow' tensors) in their own region, each on a 256-byte
 * boundary (128 halfs) so its binding offset is legal, and adds the cast that refreshes them: after
 * the optimiser in every step, and alone in the refresh_shadows program (run after the host writes
 * the parameters).
 */
function addShadowRefresh(g: Graph, layout: ParamLayout): void {
  const shadows = [...g.tensors.values()].filter((t) => t.kind === 'shadow');
  if (!shadows.length) return;
  // Each parameter region has its f16 mirror (half its size), so neither exceeds the region limit.
  const byRegion = layout.regions.map(() => ({ segments: [] as CastSegment[], at: 0 }));
  for (const t of shadows) {
    const src = layout.offsets.get(t.name.replace(/\.f16$/, ''));
    if (src === undefined) throw new Error(`graph: f16 copy '${t.name}' has no parameter`);
    const k = regionAt(layout, src);
    const r = byRegion[k]!;
    t.region = regionName('params16', k);
    t.offset = r.at;
    r.segments.push({ src: src - layout.regions[k]!.start, dst: r.at, count: numel(t.shape) });
    r.at += Math.ceil(numel(t.shape) / 128) * 128;
  }
  byRegion.forEach(({ segments, at }, k) => {
    if (!segments.length) return;
    const [params, params16] = [regionName('params', k), regionName('params16', k)];
    g.tensor(params16, [at], 'shadow', { dtype: 'f16', region: params16, offset: 0 });
    g.op('update', inRegion('params16.refresh', k), 'cast_f16', [segments], [params, params16]);
    g.op('shadow', inRegion('params16.init', k), 'cast_f16', [segments], [params, params16]);
  });
}

/** Lowers a graph to a Plan: kernels (shared between identical ops), buffers placed by the memory planner, programs. */
export function lowerGraph(g: Graph, opts: LoweringOptions = {}): { plan: Plan; memory: MemoryPlan } {
  const cache = new KernelCache(opts);
  const kernelOf = new Map<Op, RowKernel>();
  for (const op of g.ops) kernelOf.set(op, cache.get(op.kernel));

  // Liveness over the longest program, in execution order.
  const order = g.opsIn(...programPhases.train_step);
  // A view (rows of a larger tensor) is live whenever its base is: liveness and regions go by the base.
  const baseOf = (name: string) => g.get(name).viewOf ?? name;
  const planned = new Map<string, number>();
  for (const t of g.tensors.values()) if (t.kind === 'activation' && !t.viewOf) planned.set(t.name, 4 * numel(t.shape));
  const memory = planMemory(lifetimes(order.map((o) => ({ label: o.name, buffers: o.bind.map(baseOf), bindings: kernelOf.get(o)!.bindings })), planned));

  const b = new PlanBuilder(g.name);
  const used = new Set(g.ops.flatMap((o) => o.bind.flatMap((n) => [n, baseOf(n)])));
  const viewed = new Set([...g.tensors.values()].filter((t) => t.viewOf && used.has(t.name)).map((t) => t.viewOf!));
  const buffers: PlanBuffer[] = [];
  const placed = new Map<string, { region: string; offset: number }>();
  for (const t of g.tensors.values()) {
    if (!used.has(t.name)) continue;
    // Storage bindings are sized in multiples of 4 bytes (an odd number of f16 elements rounds up).
    const bytes = Math.ceil((elementBytes(t.dtype) * (t.span ?? numel(t.shape))) / 4) * 4;
    const buf: PlanBuffer = { name: t.name, bytes, role: roleOf[t.kind] };
    let region = t.kind === 'activation' ? memory.regionOf.get(t.name) : t.region;
    let offset = t.kind === 'activation' ? 0 : elementBytes(t.dtype) * (t.offset ?? 0);
    // A viewed tensor that has no region of its own (an input) becomes a region, so views can alias it.
    if (region === undefined && viewed.has(t.name)) region = t.name;
    if (t.viewOf) {
      const base = placed.get(t.viewOf);
      if (!base) throw new Error(`lowering: view '${t.name}' is declared before its base '${t.viewOf}'`);
      region = base.region;
      offset = base.offset + elementBytes(t.dtype) * t.viewOffset!;
    }
    if (region !== undefined) {
      buf.region = region;
      buf.offset = offset;
      placed.set(t.name, { region, offset });
    }
    buffers.push(buf);
  }
  for (const [program, phases] of Object.entries(programPhases)) {
    for (const op of g.opsIn(...phases)) b.dispatch(program, kernelOf.get(op)!, op.bind, undefined, op.name);
  }
  const plan = b.build();
  plan.buffers = buffers;
  return { plan, memory };
}

/**
 * Compiles a GPT-2 training step (forward, loss, backward, AdamW) into a Plan; `ffn` swaps in MoE
 * layers. `opts` lets the lowering use what the adapter that will run the plan has (default: nothing,
 * a portable plan).
 */
export function compileGpt2(spec: Gpt2Spec, ffn?: BlockBuilder, opts: LoweringOptions = {}, fit: LayoutOptions = {}): CompiledTrial {
  const graph = buildGpt2Graph(spec, ffn);
  const layout = layoutParams(graph, fit);
  addOptimizer(graph, spec, layout);
  addShadowRefresh(graph, layout);
  const { plan, memory } = lowerGraph(graph, opts);
  return { plan, graph, layout, memory, spec, lowering: opts };
}

/** A trial the compiler cannot lower, with the setting to change. */
export class CompileError extends Error {
  constructor(message: string, readonly ptr: string, readonly hint: string) {
    super(message);
  }
}

/** Compiles one trial's configuration; refuses settings the lowering does not implement yet. */
export function compileTrial(c: TrialConfig, name = 'trial', opts: LoweringOptions = {}, fit: LayoutOptions = {}): CompiledTrial {
  if (c.data[c.train.data]?.source.kind === 'clusters') return compilePatchTrial(c, name);
  if (c.train.optimizer === 'ngd') throw new CompileError('optimizer ngd (normalised gradient descent per expert, Chen et al. 2022) is implemented for the patch model of the cluster task only', '/train/optimizer', 'use optimizer adamw, adam or sgd for language models');
  if (c.train.precision === 'f16' && c.model.moe) throw new CompileError("precision f16 is lowered for dense models only: the MoE layers' grouped expert matmuls are f32", '/train/precision', 'use precision f32 for MoE models');
  if (c.model.width % c.model.heads !== 0) throw new CompileError(`width ${c.model.width} is not divisible by heads ${c.model.heads}`, '/model/heads', 'pick heads that divide the width');
  const spec = gpt2SpecOf(c, name);
  const moe = c.model.moe;
  if (!moe) return gridChecked(() => compileGpt2(spec, undefined, opts, fit));
  const bad = unsupportedMoe(moe, spec);
  if (bad) throw new CompileError(bad.message, `/model/moe/${bad.field}`, bad.hint);
  return gridChecked(() => compileGpt2(spec, moeBlock(spec, moe), opts, fit));
}

/** Kernel generators refuse grids past WebGPU's 65535 workgroups per dimension: a batch too large. */
function gridChecked(compile: () => CompiledTrial): CompiledTrial {
  try {
    return compile();
  } catch (e) {
    const m = /exceeds (\d+) workgroups/.exec((e as Error).message);
    if (m) throw new CompileError(`a kernel of this model needs more than ${m[1]} workgroups in one dimension (${(e as Error).message})`, '/train/batch', 'lower train.batch or the context (use `accumulate` to keep the effective batch)');
    throw e;
  }
}

/** Compiles the patch model of Chen et al. 2022 for a trial that trains on the synthetic cluster task. */
function compilePatchTrial(c: TrialConfig, name: string): CompiledTrial {
  const ds = c.data[c.train.data]!;
  const spec0 = gpt2SpecOf(c, name);
  const bad = unsupportedPatch(c);
  if (bad) throw new CompileError(bad.message, bad.ptr, bad.hint);
  const m = c.model.moe!;
  const syn = ds.synthetic;
  const routed = m.experts > 1;
  const trainRouter = routed && m.router !== 'frozen';
  const batch = patchTrainBatch(c);
  const patch: PatchGraphSpec = {
    name, batch, patches: syn.patches, dim: syn.dim, experts: m.experts, filters: c.model.ffn,
    act: m.expert === 'linear' ? 'linear' : m.activation, routed,
    noise: m.noise, noiseDist: m.noiseDist, salt: 0x7a7c, balance: m.balance, zloss: m.zloss,
    clusters: syn.clusters, trainRouter: m.router !== 'frozen', init: patchExpertInit(c),
    routerLrScale: trainRouter ? (c.train.routerLr ?? c.train.lr) / c.train.lr : 1, fullBatch: c.train.fullBatch === true,
  };
  const spec: Gpt2Spec = { ...spec0, batch, layers: 1, width: syn.dim, heads: 1, ffn: c.model.ffn, vocab: 0, context: syn.patches, dropout: 0 };
  const graph = buildPatchGraph(patch);
  const layout = layoutParams(graph);
  addPatchOptimizer(graph, spec, layout, trainRouter ? { name: PATCH_ROUTER, optimizer: patchRouterOptimizer(c) } : null);
  const { plan, memory } = lowerGraph(graph);
  return { plan, graph, layout, memory, spec, patch };
}
