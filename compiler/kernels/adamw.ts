import { type AdamWConfig, defaultAdamW } from '../reference/adamw.js';
import { CLIP_EPS } from '../reference/gradnorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { wgslKernel } from './wgsl-kernel.js';
import { fExp as f } from './wgsl.js';

export { adamwUniforms, defaultAdamW, type AdamWConfig } from '../reference/adamw.js';

export interface AdamWRange {
  /** First element of the flat parameter buffer this dispatch updates (default 0). */
  offset?: number;
  /** Elements updated. */
  count: number;
}

/** Largest workgroup count per dimension WebGPU guarantees. */
const MAX_GROUPS = 65535;

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
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`${name}: offset=${offset} must be a non-negative integer`);
  const groups = ceilDiv(count, wg);
  // More than 65535 workgroups spill into y; the index is linearised over the grid.
  const gx = Math.min(groups, maxGroupsX);
  const gy = ceilDiv(groups, gx);
  const clip = maxNorm > 0;
  const wgsl = `
struct Step { lr: f32, bc1: f32, bc2: f32, pad: f32 }
@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> step: Step;${clip ? '\n@group(0) @binding(5) var<storage, read> norm: array<f32>;' : ''}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = (wid.y * ${gx}u + wid.x) * ${wg}u + lid.x;
  if (j >= ${count}u) { return; }
  let i = j + ${offset}u;
  let g = grads[i]${clip ? ` * min(1.0, ${f(maxNorm)} / (sqrt(norm[0]) + ${f(CLIP_EPS)}))` : ''};
  let mi = ${f(cfg.beta1)} * m[i] + ${f(1 - cfg.beta1)} * g;
  let vi = ${f(cfg.beta2)} * v[i] + ${f(1 - cfg.beta2)} * g * g;
  m[i] = mi;
  v[i] = vi;
  let p = params[i];
  params[i] = p - step.lr * ((mi / step.bc1) / (sqrt(vi / step.bc2) + ${f(cfg.eps)}) + ${f(cfg.weightDecay)} * p);
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], {
    flops: (clip ? 16 : 14) * count,
    bytes: 4 * 7 * count + 16 + (clip ? 4 : 0),
    workgroups: [gx, gy, 1],
  });
}
