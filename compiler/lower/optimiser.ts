// The optimiser pass: run after the model graph is built and its parameters laid out, before the
// lowering. It adds the flat parameter/gradient regions, the zeroing ops, the update (AdamW, SGD
// or NGD, with global grad-norm clipping) and the f16 weight copies' refresh; the lowering then
// only lowers what the graph holds.
import type { Gpt2Spec } from '../graph/gpt2.js';
import { PATCH_EXPERTS } from '../graph/patches.js';
import { type Graph, numel } from '../graph/ir.js';
import { alignFloats, type ParamLayout, type ParamRange, regionAt, regionName } from '../graph/layout.js';
import { gradNormKernels, gradNormPartial, gradNormTotal } from '../kernels/gradnorm.js';
import { castF16, type CastSegment } from '../kernels/cast.js';
import { adamw, adamwClip } from '../kernels/adamw.js';
import { fill } from '../kernels/elementwise.js';
import { ngd as ngdUpdate } from '../kernels/ngd.js';
import { sgd as sgdUpdate } from '../kernels/sgd.js';

/** The clipped updates' extra binding: the global gradient norm, when clipping is on. */
const clipNorm = (clip: number): { norm?: string } => (clip > 0 ? { norm: 'grad_norm' } : {});

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
  layout.regions.forEach((r, k) => g.op('zero', k === 0 ? 'grads.zero' : `grads.${k}.zero`, fill, [r.floats], { x: regionName('grads', k) }));
  g.op('zero', 'train_loss.zero', fill, [1], { x: 'train_loss' });
  // train_loss's parts (graph/gpt2.ts), zeroed by the same kernel.
  for (const t of ['train_lm', 'train_balance', 'train_z']) if (g.tensors.has(t)) g.op('zero', `${t}.zero`, fill, [1], { x: t });
  if (s.clip <= 0) return;
  if (layout.regions.length === 1) {
    // Σ g² over the whole gradient region (padding is zero), then clipping inside AdamW.
    const total = layout.total;
    const partials = g.tensor('grad_norm.partials', [gradNormKernels('probe', { count: total }).partials], 'activation');
    g.op('update', 'grad_norm.partial', gradNormPartial, [total], { grads: 'grads', partials: partials });
    g.op('update', 'grad_norm', gradNormTotal, [total], { partials: partials, norm: 'grad_norm' });
    return;
  }
  // Each region's partials start on a 256-byte boundary (a legal binding offset); the gaps are zeroed.
  const counts = layout.regions.map((r) => gradNormKernels('probe', { count: r.floats }).partials);
  const starts = counts.map((_, k) => counts.slice(0, k).reduce((a, n) => a + alignFloats(n), 0));
  const P = starts[starts.length - 1]! + counts[counts.length - 1]!;
  const partials = g.tensor('grad_norm.partials', [P], 'activation');
  g.op('update', 'grad_norm.partials.zero', fill, [P], { x: partials });
  layout.regions.forEach((r, k) => {
    g.op('update', inRegion('grad_norm.partial', k), gradNormPartial, [r.floats], { grads: regionName('grads', k), partials: g.rowsOf(partials, starts[k]!, counts[k]!, 1) });
  });
  // The total stage sums ceil(count / chunk) partials: a count of P whole chunks makes it sum all P.
  const { chunk } = gradNormKernels('probe', { count: P });
  g.op('update', 'grad_norm', gradNormTotal, [P * chunk], { partials: partials, norm: 'grad_norm' });
}

/** A language model's router parameters (every router plug-in names its tensors h.{l}.mlp.router.*). */
const isRouterParam = (name: string) => /^h\.\d+\.mlp\.router\./.test(name);

interface UpdateSegment extends ParamRange {
  /** Router parameters: updated on the 'adam.router' uniform with the router's weight decay. */
  router: boolean;
}

/**
 * The optimiser's ranges, each cut where router parameters start and end when the router has its
 * own update; the update is element-wise, so cutting a range leaves every other value as it was.
 */
function updateSegments(g: Graph, layout: ParamLayout, split: boolean): UpdateSegment[] {
  if (!split) return layout.ranges.map((r) => ({ ...r, router: false }));
  const routerSpans = [...layout.offsets].filter(([name]) => isRouterParam(name) && g.get(name).trainable !== false)
    .map(([name, at]) => [at, at + alignFloats(numel(g.get(name).shape))] as const);
  const out: UpdateSegment[] = [];
  for (const r of layout.ranges) {
    const start = layout.regions[r.region]!.start + r.offset;
    const cuts = new Set([start, start + r.count]);
    for (const [a, b] of routerSpans) if (a >= start && b <= start + r.count) { cuts.add(a); cuts.add(b); }
    const at = [...cuts].sort((x, y) => x - y);
    for (let i = 0; i + 1 < at.length; i++) {
      const router = routerSpans.some(([a, b]) => a <= at[i]! && at[i]! < b);
      const last = out[out.length - 1];
      // Adjacent router tensors (a cosine router's projection and embedding) share one dispatch.
      if (last && last.router && router && last.region === r.region && last.offset + last.count === at[i]! - layout.regions[r.region]!.start) last.count += at[i + 1]! - at[i]!;
      else out.push({ region: r.region, offset: at[i]! - layout.regions[r.region]!.start, count: at[i + 1]! - at[i]!, decay: r.decay, router });
    }
  }
  return out;
}

/** Adds the region tensors, the zeroing ops and the AdamW, SGD or NGD update to a graph whose parameters are laid out. */
export function addOptimizer(g: Graph, s: Gpt2Spec, layout: ParamLayout, ngd?: NgdTargets): void {
  const sgd = s.optimizer === 'sgd';
  if (s.optimizer === 'ngd' && (!ngd || s.clip > 0)) throw new Error(`graph ${g.name}: ngd needs its expert blocks and clip 0`);
  const ownRouter = s.router !== undefined && !ngd && [...layout.offsets.keys()].some((n) => isRouterParam(n) && g.get(n).trainable !== false);
  if (s.router !== undefined && !ownRouter) throw new Error(`graph ${g.name}: a router learning rate or weight decay, but no trained router parameters`);
  // SGD and NGD keep no state beyond the step: no moments (checkpoints then hold only weights).
  addRegions(g, s, layout, !sgd && !ngd, ownRouter);
  if (ngd) {
    addNgd(g, s, layout, ngd);
    return;
  }
  const routerWd = s.router?.wd ?? null;
  for (const r of updateSegments(g, layout, ownRouter)) {
    const [params, grads, m, v] = ['params', 'grads', 'adam.m', 'adam.v'].map((b) => regionName(b, r.region));
    const uniform = r.router ? 'adam.router' : 'adam';
    // The router's own decay applies to its matrices; its vectors (a cosine router's temperature) stay undecayed.
    const wd = r.decay ? (r.router && routerWd !== null ? routerWd : s.wd) : 0;
    const base = r.router ? (r.decay ? 'router.decay' : 'router.nodecay') : r.decay ? 'decay' : 'nodecay';
    const name = (opt: string) => inRegion(`${opt}.${base}`, r.region) + (ownRouter ? `@${r.offset}` : '');
    if (sgd) {
      g.op('update', name('sgd'), sgdUpdate, [r.offset, r.count, wd, s.clip], { params: params!, grads: grads!, step: uniform, ...clipNorm(s.clip) });
      continue;
    }
    const cfg = { beta1: s.betas[0], beta2: s.betas[1], eps: s.eps, weightDecay: wd };
    if (s.clip > 0) g.op('update', name('adamw'), adamwClip, [r.offset, r.count, cfg, s.clip], { params: params!, grads: grads!, m: m!, v: v!, step: uniform, norm: 'grad_norm' });
    else g.op('update', name('adamw'), adamw, [r.offset, r.count, cfg], { params: params!, grads: grads!, m: m!, v: v!, step: uniform });
  }
}

/** NGD per block of one parameter (W_m ← W_m − lr·g_m/‖g_m‖), plain SGD for the others; every tensor named is trainable and decayed alike. */
function addNgd(g: Graph, s: Gpt2Spec, layout: ParamLayout, ngd: NgdTargets): void {
  const bufs = (k: number) => ({ params: regionName('params', k), grads: regionName('grads', k), step: 'adam' });
  const [blocks, ...rest] = g.get(ngd.blocks).shape;
  const size = rest.reduce((a, b) => a * b, 1);
  const p = placeOf(g, layout, ngd.blocks);
  g.op('update', 'ngd.blocks', ngdUpdate, [p.offset, blocks!, size, s.wd], bufs(p.k));
  for (const name of ngd.plain) {
    const q = placeOf(g, layout, name);
    g.op('update', `sgd.${name}`, sgdUpdate, [q.offset, numel(g.get(name).shape), s.wd, 0], bufs(q.k));
  }
}

/**
 * The patch model's update (Chen et al. 2022 train its two parts differently): the experts' filters
 * by `optimizer` (NGD per expert, SGD or AdamW) on the 'adam' uniform, the learned router by its own
 * optimiser on the 'adam.router' uniform, whose rate the runtime writes as lr × routerLrScale.
 * Clipping, when on, is global over both (the grad_norm the sgd and adamw_clip kernels read).
 */
export function addPatchOptimizer(g: Graph, s: Gpt2Spec, layout: ParamLayout, router: { name: string; optimizer: 'sgd' | 'adamw' } | null): void {
  if (s.optimizer === 'ngd' && s.clip > 0) throw new Error(`graph ${g.name}: ngd needs clip 0`);
  addRegions(g, s, layout, s.optimizer === 'adamw' || router?.optimizer === 'adamw', router !== null);
  const update = (name: string, optimizer: 'adamw' | 'sgd' | 'ngd', uniform: string, opName: string) => {
    const { k, offset } = placeOf(g, layout, name);
    const [params, grads, m, v] = ['params', 'grads', 'adam.m', 'adam.v'].map((b) => regionName(b, k)) as [string, string, string, string];
    const [first, ...rest] = g.get(name).shape;
    const count = numel(g.get(name).shape);
    if (optimizer === 'ngd') g.op('update', opName, ngdUpdate, [offset, first!, rest.reduce((a, b) => a * b, 1), s.wd], { params, grads, step: uniform });
    else if (optimizer === 'sgd') g.op('update', opName, sgdUpdate, [offset, count, s.wd, s.clip], { params, grads, step: uniform, ...clipNorm(s.clip) });
    else {
      const cfg = { beta1: s.betas[0], beta2: s.betas[1], eps: s.eps, weightDecay: s.wd };
      if (s.clip > 0) g.op('update', opName, adamwClip, [offset, count, cfg, s.clip], { params, grads, m, v, step: uniform, ...clipNorm(s.clip) });
      else g.op('update', opName, adamw, [offset, count, cfg], { params, grads, m, v, step: uniform });
    }
  };
  const experts = s.optimizer ?? 'adamw';
  update(PATCH_EXPERTS, experts, 'adam', experts === 'ngd' ? 'ngd.blocks' : `${experts}.${PATCH_EXPERTS}`);
  if (router) update(router.name, router.optimizer, 'adam.router', `${router.optimizer}.${router.name}`);
}

/** Flat offset of the parameter (or the part of one, placed by the layout: a vocabulary part) an f16 copy mirrors. */
function shadowSource(g: Graph, layout: ParamLayout, name: string): number | undefined {
  const whole = layout.offsets.get(name);
  if (whole !== undefined) return whole;
  const p = g.tensors.get(name);
  if (!p || p.kind !== 'param' || !p.viewOf || p.region === undefined || p.offset === undefined) return undefined;
  const k = layout.regions.findIndex((_, i) => regionName('params', i) === p.region);
  return k < 0 ? undefined : layout.regions[k]!.start + p.offset;
}

/**
 * Lays out the f16 weight copies ('shadow' tensors) in their own region, each on a 256-byte
 * boundary (128 halfs) so its binding offset is legal, and adds the cast that refreshes them: after
 * the optimiser in every step, and alone in the refresh_shadows program (run after the host writes
 * the parameters).
 */
export function addShadowRefresh(g: Graph, layout: ParamLayout): void {
  const shadows = [...g.tensors.values()].filter((t) => t.kind === 'shadow');
  if (!shadows.length) return;
  // Each parameter region has its f16 mirror (half its size), so neither exceeds the region limit.
  const byRegion = layout.regions.map(() => ({ segments: [] as CastSegment[], at: 0 }));
  for (const t of shadows) {
    const src = shadowSource(g, layout, t.name.replace(/\.f16$/, ''));
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
    g.op('update', inRegion('params16.refresh', k), castF16, [segments], { src: params, dst: params16 });
    g.op('shadow', inRegion('params16.init', k), castF16, [segments], { src: params, dst: params16 });
  });
}
