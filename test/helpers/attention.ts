import type { AttentionShape } from '../../compiler/kernels/attention.js';
import type { RowKernel } from '../../compiler/kernels/layernorm.js';
import { attentionBackwardReference, attentionForwardReference } from '../../compiler/reference/attention.js';
import { maxRelError, randomArray } from '../../compiler/reference/random.js';
import { attentionPlan } from '../../runtime/bench/attention-plan.js';
import { PlanExecutor } from '../../runtime/executor/executor.js';
import { testGpu } from './gpu.js';

/**
 * Runs a set of attention kernels (forward, dq, dk/dv) on seeded data and returns the max relative
 * errors of out, lse and the q, k and v parts of dqkv against the f64 reference. `perturb` changes
 * the kernels' input only (the test that must fail).
 */
export async function attentionErrors(s: AttentionShape, kernels: [RowKernel, RowKernel, RowKernel], seed: number, perturb?: (qkv: Float32Array) => void): Promise<Record<'out' | 'lse' | 'dq' | 'dk' | 'dv', number>> {
  const C = s.heads * s.headDim;
  // Spread of 3 so some softmax rows are peaked, not all near uniform.
  const qkv = randomArray(s.B * s.T * 3 * C, seed, 3);
  const dout = randomArray(s.B * s.T * C, seed + 1);
  const ex = await PlanExecutor.create(await testGpu(), attentionPlan(s, kernels));
  try {
    const q = qkv.slice();
    perturb?.(q);
    ex.write('qkv', q);
    ex.write('dout', dout);
    // Stale values in dqkv must be overwritten, not accumulated into.
    ex.write('dqkv', randomArray(s.B * s.T * 3 * C, seed + 2));
    ex.run('fwd');
    ex.run('bwd');
    const ref = attentionForwardReference(s, qkv);
    const want = attentionBackwardReference(s, qkv, dout);
    const got = await ex.read('dqkv');
    const part = (a: Float32Array, p: 0 | 1 | 2) =>
      Float32Array.from({ length: s.B * s.T * C }, (_, x) => a[Math.floor(x / C) * 3 * C + p * C + (x % C)]!);
    return {
      out: maxRelError(await ex.read('out'), ref.out),
      lse: maxRelError(await ex.read('lse'), ref.lse),
      dq: maxRelError(part(got, 0), part(want, 0)),
      dk: maxRelError(part(got, 1), part(want, 1)),
      dv: maxRelError(part(got, 2), part(want, 2)),
    };
  } finally {
    ex.destroy();
  }
}
