import type { PlanKernel } from '../plan/types.js';
import { IGNORE_INDEX } from '../reference/crossentropy.js';
import { checkDims, reduceBody, reduceDecls } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { wgslKernel } from './wgsl-kernel.js';

export { IGNORE_INDEX } from '../reference/crossentropy.js';

export interface CrossEntropyShape {
  /** Rows (tokens). */
  N: number;
  /** Logits per row (vocabulary size). */
  V: number;
  /** Invocations per workgroup (power of two, default 256). */
  wg?: number;
}

const u = (x: number) => `${x}u`;

/** Row max and Σ exp(l - max) of logits row `base`, reduced over the workgroup into rowMax, rowSum. */
function rowSoftmaxStats(V: number, wg: number, logits: string): string {
  return `
  var mx = -3.402823e38;
  for (var i = lid.x; i < ${u(V)}; i += ${u(wg)}) { mx = max(mx, ${logits}[base + i]); }
${reduceBody(wg, ['a'], ['mx'], 'max')}
  let rowMax = a_all;
  var se = 0.0;
  for (var i = lid.x; i < ${u(V)}; i += ${u(wg)}) { se += exp(${logits}[base + i] - rowMax); }
${reduceBody(wg, ['a'], ['se'], 'sum').replaceAll('a_all', 'rowSum')}`;
}

/**
 * Per-row loss = logsumexp(logits) - logits[target], one workgroup per row; rows whose target is
 * IGNORE_INDEX get loss 0. Other targets must be below V (a larger one is clamped to V-1 here and
 * matches no logit in the backward pass). Bindings: logits (read), targets (array<u32>, read), losses (write).
 */
export function crossEntropyForwardKernel(name: string, s: CrossEntropyShape): RowKernel {
  const { N, V } = s;
  const wg = s.wg ?? 256;
  checkDims(name, { N, V, wg });
  const wgsl = `
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;
${reduceDecls(wg, ['a'])}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x;
  let t = targets[row];
  // Uniform per workgroup, so the early return keeps barriers in uniform control flow.
  if (t == ${u(IGNORE_INDEX)}) {
    if (lid.x == 0u) { losses[row] = 0.0; }
    return;
  }
  let base = row * ${u(V)};
${rowSoftmaxStats(V, wg, 'logits')}
  if (lid.x == 0u) { losses[row] = log(rowSum) + rowMax - logits[base + min(t, ${u(V - 1)})]; }
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], {
    flops: 4 * N * V,
    bytes: 4 * (2 * N * V + 2 * N),
    workgroups: [N, 1, 1],
  });
}

/**
 * Mean loss over non-ignored rows, in one workgroup. Writes meanOut[0] = Σ loss / count and
 * meanOut[1] = gradScale / count (count clamped to ≥ 1), the factor the backward kernel reads.
 * Bindings: losses (read), targets (read), meanOut (write, 2 floats).
 */
export function crossEntropyMeanKernel(name: string, s: CrossEntropyShape, gradScale = 1): RowKernel {
  const { N } = s;
  const wg = 256;
  checkDims(name, { N });
  const wgsl = `
@group(0) @binding(0) var<storage, read> losses: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> meanOut: array<f32>;
${reduceDecls(wg, ['a', 'b'])}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var tot = 0.0;
  var cnt = 0.0;
  for (var i = lid.x; i < ${u(N)}; i += ${u(wg)}) {
    if (targets[i] != ${u(IGNORE_INDEX)}) {
      tot += losses[i];
      cnt += 1.0;
    }
  }
${reduceBody(wg, ['a', 'b'], ['tot', 'cnt'], 'sum')}
  if (lid.x == 0u) {
    let c = max(b_all, 1.0);
    meanOut[0] = a_all / c;
    meanOut[1] = ${gradScale.toExponential()} / c;
  }
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], {
    flops: N,
    bytes: 4 * (2 * N + 2),
    workgroups: [1, 1, 1],
  });
}

/**
 * dlogits = (softmax(logits) - onehot(target)) * meanOut[1], recomputing the row max and sum (no
 * probability buffer). In place by default: bindings logits (read_write, overwritten by the
 * gradient), targets, meanOut; with `inPlace: false`, logits is read-only and a fourth binding
 * dlogits receives the gradient. Ignored rows get a zero gradient.
 */
export function crossEntropyBackwardKernel(name: string, s: CrossEntropyShape, inPlace = true): RowKernel {
  const { N, V } = s;
  const wg = s.wg ?? 256;
  checkDims(name, { N, V, wg });
  const dst = inPlace ? 'logits' : 'dlogits';
  const wgsl = `
@group(0) @binding(0) var<storage, ${inPlace ? 'read_write' : 'read'}> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read> meanOut: array<f32>;
${inPlace ? '' : '@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;'}
${reduceDecls(wg, ['a'])}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x;
  let t = targets[row];
  let base = row * ${u(V)};
  if (t == ${u(IGNORE_INDEX)}) {
    for (var i = lid.x; i < ${u(V)}; i += ${u(wg)}) { ${dst}[base + i] = 0.0; }
    return;
  }
${rowSoftmaxStats(V, wg, 'logits')}
  let scale = meanOut[1];
  let inv = 1.0 / rowSum;
  // Each invocation overwrites only elements it read itself, after the reductions.
  for (var i = lid.x; i < ${u(V)}; i += ${u(wg)}) {
    let p = exp(logits[base + i] - rowMax) * inv;
    ${dst}[base + i] = (p - select(0.0, 1.0, i == t)) * scale;
  }
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], {
    flops: 6 * N * V,
    bytes: 4 * (3 * N * V + N + 2),
    workgroups: [N, 1, 1],
  });
}
