import type { AttentionShape } from '../../compiler/kernels/attention.js';
import type { RowKernel } from '../../compiler/kernels/layernorm.js';
import { PlanBuilder } from '../../compiler/plan/builder.js';
import type { Plan } from '../../compiler/plan/types.js';

/**
 * A plan running one set of attention kernels (forward, dq, dk/dv: plain or subgroup forms) on
 * packed qkv, with programs 'fwd', 'dq', 'dkv' and 'bwd' (dq then dk/dv): for tests and benches.
 */
export function attentionPlan(s: AttentionShape, [fwd, dq, dkv]: [RowKernel, RowKernel, RowKernel]): Plan {
  const { B, T, heads, headDim } = s;
  const C = heads * headDim;
  const b = new PlanBuilder('attention');
  b.buffer('qkv', B * T * 3 * C, 'input');
  b.buffer('dout', B * T * C, 'input');
  b.buffer('out', B * T * C);
  b.buffer('lse', B * heads * T);
  b.buffer('delta', B * heads * T);
  b.buffer('dqkv', B * T * 3 * C);
  const dqBindings = ['qkv', 'out', 'dout', 'lse', 'dqkv', 'delta'];
  const dkvBindings = ['qkv', 'dout', 'lse', 'delta', 'dqkv'];
  b.dispatch('fwd', fwd, ['qkv', 'out', 'lse']);
  b.dispatch('dq', dq, dqBindings);
  b.dispatch('dkv', dkv, dkvBindings);
  b.dispatch('bwd', dq, dqBindings);
  b.dispatch('bwd', dkv, dkvBindings);
  return b.build();
}
