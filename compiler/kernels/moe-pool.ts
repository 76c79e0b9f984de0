// Sequence routing's pooling: the mean of each sequence's first `prefix` hidden states, and its backward.
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, perElementMain, read, readWrite } from './definition.js';
import { u, f } from './wgsl.js';

export interface PoolShape {
  tokens: number;
  /** Tokens per sequence. */
  seqLen: number;
  width: number;
  /** Pool the first `prefix` tokens of each sequence (seqLen: all of them). */
  prefix: number;
}

const poolForwardBindings = () => [read('x'), readWrite('pooled')];
const poolBackwardBindings = () => [read('dpooled'), readWrite('dx')];

/** pooled[b, c] = mean_{t < prefix} x[b·T + t, c]. Bindings: x (read), pooled (write, B×C). */
export function moePoolForwardKernel(name: string, s: PoolShape, wg = 64): RowKernel {
  const { tokens: N, seqLen: T, width: C, prefix: P } = s;
  checkDims(name, { N, T, C, P });
  const B = N / T;
  const b = poolForwardBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'i', B * C)}
  let b = i / ${u(C)};
  let c = i % ${u(C)};
  var acc = 0.0;
  for (var t = 0u; t < ${u(P)}; t++) { acc += x[(b * ${u(T)} + t) * ${u(C)} + c]; }
  pooled[i] = acc / ${f(P)};
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: B * C * P, bytes: 4 * (B * C * (P + 1)), workgroups: [ceilDiv(B * C, wg), 1, 1] });
}

/** dx[b·T + t, c] += dpooled[b, c] / prefix for t < prefix. Bindings: dpooled (read), dx (read_write). */
export function moePoolBackwardKernel(name: string, s: PoolShape, wg = 64): RowKernel {
  const { tokens: N, seqLen: T, width: C, prefix: P } = s;
  checkDims(name, { N, T, C, P });
  const b = poolBackwardBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'i', N * C)}
  let n = i / ${u(C)};
  if (n % ${u(T)} >= ${u(P)}) { return; }
  dx[i] += dpooled[(n / ${u(T)}) * ${u(C)} + i % ${u(C)}] / ${f(P)};
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: N * C, bytes: 12 * N * C, workgroups: [ceilDiv(N * C, wg), 1, 1] });
}

export const moePoolForward = defineKernel('moe_pool_fwd', (_s: PoolShape) => poolForwardBindings(), { portable: (n, s) => moePoolForwardKernel(n, s) });
export const moePoolBackward = defineKernel('moe_pool_bwd', (_s: PoolShape) => poolBackwardBindings(), { portable: (n, s) => moePoolBackwardKernel(n, s) });
