import type { TrialConfig } from '../frontend/types.js';
import { type BlockBuilder, buildGpt2Graph, type Gpt2Spec } from '../graph/gpt2.js';
import { moeBlock } from '../graph/moe.js';
import { type MoeDiagnosticsLayout, type MoeRoutingRecord, moeSummaryName } from '../graph/moe-outputs.js';
import { SUMMARY_COUNTS, SUMMARY_FIELDS } from '../reference/moe-diagnostics.js';
import { buildPatchGraph, PATCH_LAYER, PATCH_ROUTER, type PatchGraphSpec } from '../graph/patches.js';
import { patchExpertInit, patchRouterOptimizer, patchTrainBatch } from './patch-settings.js';
import { loweringRefusal, type RuleCode } from '../rules/index.js';
import { GridLimitError } from '../kernels/grid-limit.js';
import { elementBytes, type Graph, numel, type Op, type Tensor } from '../graph/ir.js';
import { type LayoutOptions, layoutParams, type ParamLayout } from '../graph/layout.js';
import type { RowKernel } from '../kernels/layernorm.js';
import { PlanBuilder } from '../plan/builder.js';
import type { Plan, PlanBuffer } from '../plan/types.js';
import { KernelCache, type LoweringOptions, type LoweringTarget } from './kernels.js';
import { addOptimizer, addPatchOptimizer, addShadowRefresh } from './optimiser.js';
import { planInterface } from './interface.js';

import { lifetimes, type MemoryPlan, planMemory } from './memory.js';
import type { MicroBatchSplit } from './fit.js';

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
  /** The layers that write MoE statistics (empty for a dense model). */
  routing: MoeRoutingRecord[];
  /** The per-layer load diagnostics, when the plan keeps them (sparse MoE layers). */
  moeDiagnostics?: MoeDiagnosticsLayout;
  /** Set when the plan runs smaller micro-batches than the trial's file writes, to fit a device (lower/fit.ts). */
  split?: MicroBatchSplit;
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
  /** Summarises (and restarts) each MoE layer's window of routing statistics, at a logging step. */
  moe_stats: ['stats'],
} as const;

export function gpt2SpecOf(c: TrialConfig, name = 'trial'): Gpt2Spec {
  const m = c.model;
  const t = c.train;
  return {
    name, layers: m.layers, width: m.width, heads: m.heads, ffn: m.ffn, vocab: m.vocab, context: m.context, dropout: m.dropout,
    batch: t.batch, accumulate: t.accumulate, betas: t.betas, eps: t.eps, wd: t.optimizer === 'adam' ? 0 : t.wd, clip: t.clip,
    optimizer: t.optimizer === 'sgd' || t.optimizer === 'ngd' ? t.optimizer : 'adamw', precision: t.precision,
    // The router's own rate and decay (the patch model reads train.routerLr itself).
    ...((t.routerLr ?? null) !== null || (t.routerWd ?? null) !== null ? { router: { lrScale: (t.routerLr ?? t.lr) / t.lr, wd: t.routerWd ?? null } } : {}),
  };
}

const roleOf: Record<Tensor['kind'], PlanBuffer['role']> = {
  param: 'param', grad: 'grad', optimizer: 'optimizer', activation: 'activation', input: 'input', uniform: 'uniform', output: 'output', shadow: 'param',
};

/** The options of a target alone (plain data: what the compile summary and the run records name). */
const optionsOf = (t: LoweringTarget): LoweringOptions => (t.subgroupMatmul === undefined ? {} : { subgroupMatmul: t.subgroupMatmul });

/** Lowers a graph to a Plan: kernels (shared between identical ops), buffers placed by the memory planner, programs. */
export function lowerGraph(g: Graph, opts: LoweringTarget = {}): { plan: Plan; memory: MemoryPlan } {
  const cache = new KernelCache(opts);
  const kernelOf = new Map<Op, RowKernel>();
  for (const op of g.ops) kernelOf.set(op, cache.get(op.kernel));

  // Liveness over the longest program, in execution order.
  const order = g.opsIn(...programPhases.train_step);
  // A view (rows of a larger tensor) is live whenever its base is: liveness and regions go by the base.
  // Rows of a parameter or gradient cut over regions (a vocabulary in parts) are placed by the
  // layout itself, and their whole tensor is never bound.
  const ownPlace = (t: Tensor) => t.viewOf !== undefined && t.kind !== 'activation' && t.region !== undefined;
  const baseOf = (name: string) => { const t = g.get(name); return t.viewOf && !ownPlace(t) ? t.viewOf : name; };
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
    if (t.viewOf && !ownPlace(t)) {
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
export function compileGpt2(spec: Gpt2Spec, ffn?: BlockBuilder, opts: LoweringTarget = {}, fit: LayoutOptions = {}): CompiledTrial {
  // wte is cut into parts under the same binding limit as the parameter regions.
  const limit = spec.maxBindingBytes ?? fit.maxRegionBytes;
  const graph = buildGpt2Graph(limit === undefined ? spec : { ...spec, maxBindingBytes: limit }, ffn);
  const layout = layoutParams(graph, fit);
  addOptimizer(graph, spec, layout);
  addShadowRefresh(graph, layout);
  const { plan, memory } = lowerGraph(graph, opts);
  const routing = ffn?.routing ?? [];
  plan.interface = planInterface(plan, graph, layout, routing);
  const moeDiagnostics = diagnosticsOf(graph, routing);
  return { plan, graph, layout, memory, spec, lowering: optionsOf(opts), routing, ...(moeDiagnostics ? { moeDiagnostics } : {}) };
}

/** The load diagnostics' layout, from the summary outputs the MoE layers declared (none: undefined). */
function diagnosticsOf(g: Graph, routing: MoeRoutingRecord[]): MoeDiagnosticsLayout | undefined {
  const layers = routing.filter((r) => g.tensors.has(moeSummaryName(r.layer))).map((r) => ({ layer: r.layer, experts: r.experts, buffer: moeSummaryName(r.layer) }));
  return layers.length ? { program: 'moe_stats', fields: SUMMARY_FIELDS, countsAt: SUMMARY_COUNTS, layers } : undefined;
}

/** A trial the compiler cannot lower, with the setting to change and the registry's code of the rule. */
export class CompileError extends Error {
  constructor(message: string, readonly ptr: string, readonly hint: string, readonly code: RuleCode) {
    super(message);
  }
}

/** Compiles one trial's configuration; refuses settings the lowering does not implement yet. */
export function compileTrial(c: TrialConfig, name = 'trial', opts: LoweringTarget = {}, fit: LayoutOptions = {}): CompiledTrial {
  const spec = gpt2SpecOf(c, name);
  const bad = loweringRefusal(c, ['semantic', 'lowering']);
  if (bad) throw new CompileError(bad.message, bad.ptr, bad.hint, bad.code);
  if (c.data[c.train.data]?.source.kind === 'clusters') return compilePatchTrial(c, name);
  const moe = c.model.moe;
  if (!moe) return gridChecked(() => compileGpt2(spec, undefined, opts, fit));
  return gridChecked(() => compileGpt2(spec, moeBlock(spec, moe), opts, fit));
}

/** Kernel generators refuse grids past WebGPU's 65535 workgroups per dimension: a batch too large. */
function gridChecked(compile: () => CompiledTrial): CompiledTrial {
  try {
    return compile();
  } catch (e) {
    if (e instanceof GridLimitError) throw new CompileError(`a kernel of this model needs more than ${e.limit} workgroups in one dimension (${e.message})`, '/train/batch', 'lower train.batch or the context (use `accumulate` to keep the effective batch)', 'lower.grid-too-large');
    throw e;
  }
}

/** Compiles the patch model of Chen et al. 2022 for a trial that trains on the synthetic cluster task. */
function compilePatchTrial(c: TrialConfig, name: string): CompiledTrial {
  const ds = c.data[c.train.data]!;
  const spec0 = gpt2SpecOf(c, name);
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
  const routing: MoeRoutingRecord[] = routed ? [{ layer: PATCH_LAYER, experts: m.experts, selPerToken: null }] : [];
  plan.interface = planInterface(plan, graph, layout, routing);
  return { plan, graph, layout, memory, spec, patch, routing };
}
