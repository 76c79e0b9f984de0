import { checkDims } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, checkOffset, defineKernel, optimiserBindings, optimiserUpdateMain, read } from './definition.js';
import { fExp as f, grid } from './wgsl.js';

const sgdBindings = (maxNorm: number) => [...optimiserBindings(), ...(maxNorm > 0 ? [read('norm')] : [])];

/**
 * Plain SGD over params[offset, offset+count): p ← p − lr·(clip·g + wd·p), one element per
 * invocation. lr is the first float of the optimizer's 16-byte uniform block (the one AdamW reads,
 * see adamwUniforms), so the trainer drives both optimizers alike. With maxNorm > 0 the gradient is
 * scaled by min(1, maxNorm / (‖g‖ + 1e-6)), norm[0] = Σ g² from gradNormKernels.
 * Bindings: params, grads (read), step (uniform), then norm (read) when clipping.
 */
export function sgdKernel(name: string, offset: number, count: number, weightDecay: number, maxNorm = 0, wg = 256): RowKernel {
  checkDims(name, { count, wg });
  checkOffset(name, offset);
  const g = grid(count, wg);
  const b = sgdBindings(maxNorm);
  const wgsl = `
${optimiserUpdateMain(b, wg, g.idx, count, offset, maxNorm, 'gi')}
  params[i] = params[i] - step.lr * (gi + ${f(weightDecay)} * params[i]);
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 4 * count, bytes: 12 * count, workgroups: g.workgroups });
}

export const sgd = defineKernel('sgd', (_offset: number, _count: number, _wd: number, maxNorm: number) => sgdBindings(maxNorm), { portable: (n, offset, count, wd, maxNorm) => sgdKernel(n, offset, count, wd, maxNorm) });
