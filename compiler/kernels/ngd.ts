import { checkDims, reduceBody, reduceDecls } from './reduce.js';
import { GridLimitError } from './grid-limit.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, checkOffset, declarations, defineKernel, optimiserBindings } from './definition.js';
import { fExp as f, stepStruct } from './wgsl.js';

/**
 * Normalised gradient descent over `blocks` contiguous blocks of `size` floats starting at
 * params[offset] (the experts' filters W_m of the patch model): one workgroup per block reduces
 * its gradient's Frobenius norm, then updates the block p ← p − lr·(g/‖g‖ + wd·p); a block with an
 * all-zero gradient gets only the decay (reference: ngdReference). The norm is taken as
 * max|g|·‖g/max|g|‖, so gradients whose squares would underflow f32 still give a unit step. Each
 * element has a fixed place in a fixed reduction tree: equal inputs give bit-identical updates.
 * lr is the first float of the optimizer's uniform block, as for SGD and AdamW.
 * Bindings: params, grads (read), step (uniform).
 */
export function ngdKernel(name: string, offset: number, blocks: number, size: number, weightDecay: number, wg = 256): RowKernel {
  checkDims(name, { blocks, size, wg });
  checkOffset(name, offset);
  if (blocks > 65535) throw new GridLimitError(`${name}: ${blocks} blocks exceeds 65535 workgroups`);
  const b = optimiserBindings();
  const wgsl = `
${stepStruct}
${declarations(b)}
${reduceDecls(wg, ['mx', 'ss'])}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let base = ${offset}u + wid.x * ${size}u;
  var amax = 0.0;
  for (var i = lid.x; i < ${size}u; i += ${wg}u) { amax = max(amax, abs(grads[base + i])); }
${reduceBody(wg, ['mx'], ['amax'], 'max')}
  var acc = 0.0;
  let inv = select(0.0, 1.0 / mx_all, mx_all > 0.0);
  if (mx_all > 0.0) {
    for (var i = lid.x; i < ${size}u; i += ${wg}u) {
      let x = grads[base + i] * inv;
      acc = fma(x, x, acc);
    }
  }
${reduceBody(wg, ['ss'], ['acc'], 'sum')}
  // g/‖g‖ = (g/max)/‖g/max‖ (ss_all ≥ 1 when max > 0); zero for an all-zero gradient.
  let rn = select(0.0, 1.0 / sqrt(ss_all), mx_all > 0.0);
  for (var i = lid.x; i < ${size}u; i += ${wg}u) {
    let j = base + i;
    params[j] = params[j] - step.lr * (grads[j] * inv * rn + ${f(weightDecay)} * params[j]);
  }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 8 * blocks * size, bytes: 16 * blocks * size, workgroups: [blocks, 1, 1] });
}

export const ngd = defineKernel('ngd', (_offset: number, _blocks: number, _size: number, _wd: number) => optimiserBindings(), { portable: (n, offset, blocks, size, wd) => ngdKernel(n, offset, blocks, size, wd) });
