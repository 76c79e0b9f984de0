// Sequence routing's pooling: the mean of each sequence's first `prefix` hidden states, and its backward.
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { wgslKernel } from './wgsl-kernel.js';
import { u, f } from './wgsl.js';

export interface PoolShape {
  tokens: number;
  /** Tokens per sequence. */
  seqLen: number;
  width: number;
  /** Pool the first `prefix` tokens of each sequence (seqLen: all of them). */
  prefix: number;
}

/** pooled[b, c] = mean_{t < prefix} x[b·T + t, c]. Bindings: x (read), pooled (write, B×C). */
export function moePoolForwardKernel(name: string, s: PoolShape, wg = 64): RowKernel {
  const { tokens: N, seqLen: T, width: C, prefix: P } = s;
  checkDims(name, { N, T, C, P });
  const B = N / T;
  const wgsl = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> pooled: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${u(B * C)}) { return; }
  let b = i / ${u(C)};
  let c = i % ${u(C)};
  var acc = 0.0;
  for (var t = 0u; t < ${u(P)}; t++) { acc += x[(b * ${u(T)} + t) * ${u(C)} + c]; }
  pooled[i] = acc / ${f(P)};
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: B * C * P, bytes: 4 * (B * C * (P + 1)), workgroups: [ceilDiv(B * C, wg), 1, 1] });
}

/** dx[b·T + t, c] += dpooled[b, c] / prefix for t < prefix. Bindings: dpooled (read), dx (read_write). */
export function moePoolBackwardKernel(name: string, s: PoolShape, wg = 64): RowKernel {
  const { tokens: N, seqLen: T, width: C, prefix: P } = s;
  checkDims(name, { N, T, C, P });
  const wgsl = `
@group(0) @binding(0) var<storage, read> dpooled: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${u(N * C)}) { return; }
  let n = i / ${u(C)};
  if (n % ${u(T)} >= ${u(P)}) { return; }
  dx[i] += dpooled[(n / ${u(T)}) * ${u(C)} + i % ${u(C)}] / ${f(P)};
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: N * C, bytes: 12 * N * C, workgroups: [ceilDiv(N * C, wg), 1, 1] });
}
