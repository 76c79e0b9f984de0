import { type AdamWConfig, defaultAdamW } from '../reference/adamw.js';
import { checkDims } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, checkOffset, defineKernel, optimiserBindings, optimiserUpdateMain, read } from './definition.js';
import { fExp as f, grid, MAX_GROUPS } from './wgsl.js';

export { adamwUniforms, defaultAdamW, type AdamWConfig } from '../reference/adamw.js';

export interface AdamWRange {
  /** First element of the flat parameter buffer this dispatch updates (default 0). */
  offset?: number;
  /** Elements updated. */
  count: number;
}

const adamwBindings = (maxNorm: number) => [...optimiserBindings(['m', 'v']), ...(maxNorm > 0 ? [read('norm')] : [])];

/**
 * One AdamW step over params[offset, offset+count), one element per invocation. beta1, beta2, eps,
 * weight decay and the range are baked in; lr and the two bias corrections come from a 16-byte
 * uniform (see adamwUniforms), so one recorded program serves every step. Decay is per dispatch:
 * the compiler dispatches decayed (matrices) and undecayed (biases, LayerNorm) ranges separately.
 * Bindings: params, grads (read), m, v, step (uniform). `maxGroupsX` only lowers the spill point, for tests.
 */
export function adamwKernel(name: string, range: AdamWRange, cfg: AdamWConfig = defaultAdamW, wg = 256, maxGroupsX = MAX_GROUPS): RowKernel {
  return adamwGenerate(name, range, cfg, 0, wg, maxGroupsX);
}

/**
 * AdamW with global gradient-norm clipping: each gradient is multiplied by
 * clip = min(1, maxNorm / (sqrt(norm[0]) + 1e-6)) before the update, where norm[0] = Σ g² over all
 * gradients, written by gradNormKernels' second stage earlier in the same program. Bindings: those of
 * adamwKernel, then norm (read, ≥ 1 float). maxNorm (baked in) 0 means no clipping: the kernel is then
 * exactly adamwKernel and has no norm binding.
 */
export function adamwClipKernel(name: string, range: AdamWRange, cfg: AdamWConfig, maxNorm: number, wg = 256, maxGroupsX = MAX_GROUPS): RowKernel {
  if (!(Number.isFinite(maxNorm) && maxNorm >= 0)) throw new Error(`${name}: maxNorm=${maxNorm} must be a finite number >= 0`);
  return adamwGenerate(name, range, cfg, maxNorm, wg, maxGroupsX);
}

function adamwGenerate(name: string, range: AdamWRange, cfg: AdamWConfig, maxNorm: number, wg: number, maxGroupsX: number): RowKernel {
  const offset = range.offset ?? 0;
  const { count } = range;
  checkDims(name, { count, wg, maxGroupsX });
  checkOffset(name, offset);
  // More than 65535 workgroups spill into y; the index is linearised over the grid.
  const g = grid(count, wg, maxGroupsX);
  const clip = maxNorm > 0;
  const b = adamwBindings(maxNorm);
  const wgsl = `
${optimiserUpdateMain(b, wg, g.idx, count, offset, maxNorm, 'g')}
  let mi = ${f(cfg.beta1)} * m[i] + ${f(1 - cfg.beta1)} * g;
  let vi = ${f(cfg.beta2)} * v[i] + ${f(1 - cfg.beta2)} * g * g;
  m[i] = mi;
  v[i] = vi;
  let p = params[i];
  params[i] = p - step.lr * ((mi / step.bc1) / (sqrt(vi / step.bc2) + ${f(cfg.eps)}) + ${f(cfg.weightDecay)} * p);
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], {
    flops: (clip ? 16 : 14) * count,
    bytes: 4 * 7 * count + 16 + (clip ? 4 : 0),
    workgroups: g.workgroups,
  });
}

export const adamw = defineKernel('adamw', (_offset: number, _count: number, _cfg: AdamWConfig) => adamwBindings(0), { portable: (n, offset, count, cfg) => adamwKernel(n, { offset, count }, cfg) });
export const adamwClip = defineKernel('adamw_clip', (_offset: number, _count: number, _cfg: AdamWConfig, maxNorm: number) => adamwBindings(maxNorm), {
  portable: (n, offset, count, cfg, maxNorm) => adamwClipKernel(n, { offset, count }, cfg, maxNorm),
});
