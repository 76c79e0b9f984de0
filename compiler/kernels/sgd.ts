import { CLIP_EPS } from '../reference/gradnorm.js';
import { checkDims } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, declarations, defineKernel, optimiserBindings, read } from './definition.js';
import { entry, fExp as f, grid, stepStruct } from './wgsl.js';

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
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`${name}: offset=${offset} must be a non-negative integer`);
  const g = grid(count, wg);
  const clip = maxNorm > 0;
  const b = sgdBindings(maxNorm);
  const wgsl = `
${stepStruct}
${declarations(b)}
${entry(wg)}
  let j = ${g.idx};
  if (j >= ${count}u) { return; }
  let i = j + ${offset}u;
  let gi = grads[i]${clip ? ` * min(1.0, ${f(maxNorm)} / (sqrt(norm[0]) + ${f(CLIP_EPS)}))` : ''};
  params[i] = params[i] - step.lr * (gi + ${f(weightDecay)} * params[i]);
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 4 * count, bytes: 12 * count, workgroups: g.workgroups });
}

export const sgd = defineKernel('sgd', (_offset: number, _count: number, _wd: number, maxNorm: number) => sgdBindings(maxNorm), { portable: (n, offset, count, wd, maxNorm) => sgdKernel(n, offset, count, wd, maxNorm) });
