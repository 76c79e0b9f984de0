import { ceilDiv, checkDims, reduceBody, reduceDecls } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { MAX_GROUPS } from './wgsl.js';

export { clipFactor, CLIP_EPS, gradSumSquaresReference } from '../reference/gradnorm.js';

export interface GradNormShape {
  /** Floats in the flat gradient buffer. */
  count: number;
  /** Invocations per workgroup (power of two, default 256). */
  wg?: number;
  /** Elements each invocation squares in the first stage (default 16). */
  perInvocation?: number;
  /** Lowers the point where first-stage workgroups spill into y; for tests. */
  maxGroupsX?: number;
}

export interface GradNormKernels {
  /** Stage 1. Bindings: grads (read, `count` floats), partials (write, `partials` floats). */
  partial: RowKernel;
  /** Stage 2, one workgroup. Bindings: partials (read), norm (write, 2 floats: Σ g², ‖g‖). */
  total: RowKernel;
  /** Floats the partials buffer needs. */
  partials: number;
  /** Gradient elements summed into each partial (the total stage sums ceil(count / chunk) partials). */
  chunk: number;
}

const partialBindings = () => [read('grads'), readWrite('partials')];
const totalBindings = () => [read('partials'), readWrite('norm')];

/**
 * Global gradient norm as a two-stage tree reduction: each first-stage workgroup sums the squares of
 * its wg·perInvocation elements into one partial, then one workgroup sums the partials. Every
 * element has a fixed place in a fixed tree and no atomics are used, so equal inputs give
 * bit-identical norms. The clipping AdamW kernel (adamwClipKernel) reads norm[0].
 */
export function gradNormKernels(name: string, s: GradNormShape): GradNormKernels {
  const { count } = s;
  const wg = s.wg ?? 256;
  const per = s.perInvocation ?? 16;
  const maxGroupsX = s.maxGroupsX ?? MAX_GROUPS;
  checkDims(name, { count, wg, perInvocation: per, maxGroupsX });
  const chunk = wg * per;
  const groups = ceilDiv(count, chunk);
  // Past 65535 workgroups the grid spills into y; the group index is linearised over it.
  const gx = Math.min(groups, maxGroupsX);
  const gy = ceilDiv(groups, gx);
  const partial = `
${declarations(partialBindings())}
${reduceDecls(wg, ['a'])}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = wid.y * ${gx}u + wid.x;
  // Uniform per workgroup, so the barriers below stay in uniform control flow.
  if (g >= ${groups}u) { return; }
  let base = g * ${chunk}u + lid.x;
  var acc = 0.0;
  for (var k = 0u; k < ${per}u; k++) {
    let i = base + k * ${wg}u;
    if (i < ${count}u) {
      let x = grads[i];
      acc = fma(x, x, acc);
    }
  }
${reduceBody(wg, ['a'], ['acc'], 'sum')}
  if (lid.x == 0u) { partials[g] = a_all; }
}
`;
  const total = `
${declarations(totalBindings())}
${reduceDecls(wg, ['a'])}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < ${groups}u; i += ${wg}u) { acc += partials[i]; }
${reduceBody(wg, ['a'], ['acc'], 'sum')}
  if (lid.x == 0u) {
    norm[0] = a_all;
    norm[1] = sqrt(a_all);
  }
}
`;
  return {
    partial: boundKernel(`${name}_partial`, partialBindings(), partial, [wg, 1, 1], { flops: 2 * count, bytes: 4 * (count + groups), workgroups: [gx, gy, 1] }),
    total: boundKernel(`${name}_total`, totalBindings(), total, [wg, 1, 1], { flops: groups, bytes: 4 * (groups + 2), workgroups: [1, 1, 1] }),
    partials: groups,
    chunk,
  };
}

export const gradNormPartial = defineKernel('gradnorm_partial', (_count: number) => partialBindings(), { portable: (n, count) => gradNormKernels(n, { count }).partial });
export const gradNormTotal = defineKernel('gradnorm_total', (_count: number) => totalBindings(), { portable: (n, count) => gradNormKernels(n, { count }).total });
