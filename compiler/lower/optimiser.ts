// The optimiser pass: run after the model graph is built and its parameters laid out, before the
// lowering. It adds the flat parameter/gradient regions, the zeroing ops, the update (AdamW, SGD
// or NGD, with global grad-norm clipping) and the f16 weight copies' refresh; the lowering then
// only lowers what the graph holds.
import type { Gpt2Spec } from '../graph/gpt2.js';
import { PATCH_EXPERTS } from '../graph/patches.js';
import { type Graph, numel } from '../graph/ir.js';
import type { ParamLayout } from '../graph/layout.js';
import { gradNormKernels } from '../kernels/gradnorm.js';
import { sgdKernel } from '../kernels/sgd.js';
import { ngdKernel } from '../kernels/ngd.js';
import { type CastSegment, castF16Kernel } from '../kernels/cast.js';
import { registerKernel } from './kernels.js';

registerKernel('sgd', (n, offset: number, count: number, wd: number, clip: number) => sgdKernel(n, offset, count, wd, clip));
registerKernel('ngd', (n, offset: number, blocks: number, size: number, wd: number) => ngdKernel(n, offset, blocks, size, wd));
registerKernel('cast_f16', (n, segments: CastSegment[]) => castF16Kernel(n, segments));

/** For optimizer ngd: the parameter normalised per block (its first dimension), and those plain SGD updates. */
export interface NgdTargets {
  blocks: string;
  plain: string[];
}

/**
 * Adds the whole-region views, the zeroing ops and the AdamW, SGD or NGD update to a graph whose
 * parameters are laid out.
 */
export function addOptimizer(g: Graph, s: Gpt2Spec, layout: ParamLayout, ngd?: NgdTargets): void {
  const total = layout.total;
  const sgd = s.optimizer === 'sgd';
  if (s.optimizer === 'ngd' && (!ngd || s.clip > 0)) throw new Error(`graph ${g.name}: ngd needs its expert blocks and clip 0`);
  g.tensor('params', [total], 'param', { region: 'params', offset: 0 });
  g.tensor('grads', [total], 'grad', { region: 'grads', offset: 0 });
  // SGD and NGD keep no state beyond the step: no moments (checkpoints then hold only weights).
  if (!sgd && !ngd) {
    g.tensor('adam.m', [total], 'optimizer');
    g.tensor('adam.v', [total], 'optimizer');
  }
  g.op('zero', 'grads.zero', 'fill', [total], ['grads']);
  g.op('zero', 'train_loss.zero', 'fill', [1], ['train_loss']);
  if (s.clip > 0) {
    // Σ g² over the whole gradient region (padding is zero), then clipping inside AdamW.
    const partials = g.tensor('grad_norm.partials', [gradNormKernels('probe', { count: total }).partials], 'activation');
    g.op('update', 'grad_norm.partial', 'gradnorm_partial', [total], ['grads', partials]);
    g.op('update', 'grad_norm', 'gradnorm_total', [total], [partials, 'grad_norm']);
  }
  if (ngd) {
    addNgd(g, s, layout, ngd);
    return;
  }
  for (const r of layout.ranges) {
    if (sgd) {
      g.op('update', r.decay ? 'sgd.decay' : 'sgd.nodecay', 'sgd', [r.offset, r.count, r.decay ? s.wd : 0, s.clip], ['params', 'grads', 'adam', ...(s.clip > 0 ? ['grad_norm'] : [])]);
      continue;
    }
    const cfg = { beta1: s.betas[0], beta2: s.betas[1], eps: s.eps, weightDecay: r.decay ? s.wd : 0 };
    const name = r.decay ? 'adamw.decay' : 'adamw.nodecay';
    if (s.clip > 0) g.op('update', name, 'adamw_clip', [r.offset, r.count, cfg, s.clip], ['params', 'grads', 'adam.m', 'adam.v', 'adam', 'grad_norm']);
    else g.op('update', name, 'adamw', [r.offset, r.count, cfg], ['params', 'grads', 'adam.m', 'adam.v', 'adam']);
  }
}

/** NGD per block of one parameter (W_m ← W_m − lr·g_m/‖g_m‖), plain SGD for the others; every tensor named is trainable and decayed alike. */
function addNgd(g: Graph, s: Gpt2Spec, layout: ParamLayout, ngd: NgdTargets): void {
  const at = (name: string) => {
    const offset = layout.offsets.get(name);
    if (offset === undefined || g.get(name).trainable === false) throw new Error(`graph ${g.name}: ngd target '${name}' is not a trainable parameter`);
    return offset;
  };
  const [blocks, ...rest] = g.get(ngd.blocks).shape;
  const size = rest.reduce((a, b) => a * b, 1);
  g.op('update', 'ngd.blocks', 'ngd', [at(ngd.blocks), blocks!, size, s.wd], ['params', 'grads', 'adam']);
  for (const name of ngd.plain) g.op('update', `sgd.${name}`, 'sgd', [at(name), numel(g.get(name).shape), s.wd, 0], ['params', 'grads', 'adam']);
}

/**
 * The patch model's update (Chen et al. 2022 train its two parts differently): the experts' filters
 * by `optimizer` (NGD per expert, SGD or AdamW) on the 'adam' uniform, the learned router by its own
 * optimiser on the 'adam.router' uniform, whose rate the runtime writes as lr × routerLrScale.
 * Clipping, when on, is global over both (the grad_norm the sgd and adamw_clip kernels read).
 */
export function addPatchOptimizer(g: Graph, s: Gpt2Spec, layout: ParamLayout, router: { name: string; optimizer: 'sgd' | 'adamw' } | null): void {
  const total = layout.total;
  if (s.optimizer === 'ngd' && s.clip > 0) throw new Error(`graph ${g.name}: ngd needs clip 0`);
  g.tensor('params', [total], 'param', { region: 'params', offset: 0 });
  g.tensor('grads', [total], 'grad', { region: 'grads', offset: 0 });
  if (s.optimizer === 'adamw' || router?.optimizer === 'adamw') {
    g.tensor('adam.m', [total], 'optimizer');
    g.tensor('adam.v', [total], 'optimizer');
  }
  if (router) g.tensor('adam.router', [4], 'uniform');
  g.op('zero', 'grads.zero', 'fill', [total], ['grads']);
  g.op('zero', 'train_loss.zero', 'fill', [1], ['train_loss']);
  const clip = s.clip > 0 ? ['grad_norm'] : [];
  if (s.clip > 0) {
    const partials = g.tensor('grad_norm.partials', [gradNormKernels('probe', { count: total }).partials], 'activation');
    g.op('update', 'grad_norm.partial', 'gradnorm_partial', [total], ['grads', partials]);
    g.op('update', 'grad_norm', 'gradnorm_total', [total], [partials, 'grad_norm']);
  }
  const update = (name: string, optimizer: 'adamw' | 'sgd' | 'ngd', uniform: string, opName: string) => {
    const offset = layout.offsets.get(name);
    if (offset === undefined || g.get(name).trainable === false) throw new Error(`graph ${g.name}: '${name}' is not a trainable parameter`);
    const [first, ...rest] = g.get(name).shape;
    const count = numel(g.get(name).shape);
    if (optimizer === 'ngd') g.op('update', opName, 'ngd', [offset, first!, rest.reduce((a, b) => a * b, 1), s.wd], ['params', 'grads', uniform]);
    else if (optimizer === 'sgd') g.op('update', opName, 'sgd', [offset, count, s.wd, s.clip], ['params', 'grads', uniform, ...clip]);
    else {
      const cfg = { beta1: s.betas[0], beta2: s.betas[1], eps: s.eps, weightDecay: s.wd };
      if (s.clip > 0) g.op('update', opName, 'adamw_clip', [offset, count, cfg, s.clip], ['params', 'grads', 'adam.m', 'adam.v', uniform, ...clip]);
      else g.op('update', opName, 'adamw', [offset, count, cfg], ['params', 'grads', 'adam.m', 'adam.v', uniform]);
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
export function addShadowRefresh(g: Graph, layout: ParamLayout): void {
  const shadows = [...g.tensors.values()].filter((t) => t.kind === 'shadow');
  if (!shadows.length) return;
  const segments: CastSegment[] = [];
  let at = 0;
  for (const t of shadows) {
    const src = layout.offsets.get(t.name.replace(/\.f16$/, ''));
    if (src === undefined) throw new Error(`graph: f16 copy '${t.name}' has no parameter`);
    t.offset = at;
    segments.push({ src, dst: at, count: numel(t.shape) });
    at += Math.ceil(numel(t.shape) / 128) * 128;
  }
  g.tensor('params16', [at], 'shadow', { dtype: 'f16', region: 'params16', offset: 0 });
  g.op('update', 'params16.refresh', 'cast_f16', [segments], ['params', 'params16']);
  g.op('shadow', 'params16.init', 'cast_f16', [segments], ['params', 'params16']);
}

