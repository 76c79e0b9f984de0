import { IGNORE_INDEX } from '../reference/crossentropy.js';
import { checkDims, reduceBody, reduceDecls, rowWorkgroupMain } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { type Binding, boundKernel, declarations, defineKernel, perElementMain, read, readWrite } from './definition.js';
import { perRowGrid, rowForm, u } from './wgsl.js';

export { IGNORE_INDEX } from '../reference/crossentropy.js';

export interface CrossEntropyShape {
  /** Rows (tokens). */
  N: number;
  /** Logits per row (vocabulary size). */
  V: number;
  /** Invocations per workgroup (power of two, default 256; 64 with perRow 'invocation'). */
  wg?: number;
  /**
   * 'workgroup' (default): one workgroup per row with tree reductions in workgroup memory, for long
   * rows on real GPUs. 'invocation': one invocation per row looping over it, no workgroup memory or
   * barriers; rows map to SIMD lanes, which is much faster on llvmpipe for short rows.
   */
  perRow?: 'invocation' | 'workgroup';
}

export { perRowGrid } from './wgsl.js';

/** Row kernels whose rows are read as vec4 where V allows (`t`); the per-row values stay f32. */
const forwardBindings = (t = 'array<f32>') => [read('logits', t), read('targets', 'array<u32>'), readWrite('losses')];
const meanBindings = () => [read('losses'), read('targets', 'array<u32>'), readWrite('meanOut')];
/** In place, logits (read_write) takes the gradient; otherwise a fourth binding dlogits does. */
const backwardBindings = (inPlace: boolean, t = 'array<f32>'): Binding[] => [
  inPlace ? readWrite('logits', t) : read('logits', t),
  read('targets', 'array<u32>'),
  read('meanOut'),
  ...(inPlace ? [] : [readWrite('dlogits', t)]),
];

/**
 * Per-invocation row max and Σ exp(l - max) of the V logits at `base` (in units of the element
 * type: vec4 when V % 4 == 0), into rowMax and rowSum. Sequential, so deterministic.
 */
function rowStatsSerial(V: number, logits: string): string {
  const vec = V % 4 === 0;
  const n = vec ? V / 4 : V;
  if (!vec) {
    return `
  var rowMax = -3.402823e38;
  for (var i = 0u; i < ${u(n)}; i++) { rowMax = max(rowMax, ${logits}[base + i]); }
  var rowSum = 0.0;
  for (var i = 0u; i < ${u(n)}; i++) { rowSum += exp(${logits}[base + i] - rowMax); }`;
  }
  return `
  var m4 = vec4<f32>(-3.402823e38);
  for (var i = 0u; i < ${u(n)}; i++) { m4 = max(m4, ${logits}[base + i]); }
  let rowMax = max(max(m4.x, m4.y), max(m4.z, m4.w));
  var s4 = vec4<f32>(0.0);
  for (var i = 0u; i < ${u(n)}; i++) { s4 += exp(${logits}[base + i] - rowMax); }
  let rowSum = (s4.x + s4.y) + (s4.z + s4.w);`;
}

/** Row max and Σ exp(l - max) of logits row `base`, reduced over the workgroup into rowMax, rowSum. */
export function rowSoftmaxStats(V: number, wg: number, logits: string): string {
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
  if (s.perRow === 'invocation') return crossEntropyForwardPerInvocation(name, s);
  const wg = s.wg ?? 256;
  checkDims(name, { N, V, wg });
  const bind = forwardBindings();
  const wgsl = `
${rowWorkgroupMain(declarations(bind), wg, ['a'])}
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
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
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
  if (s.perRow === 'invocation') return crossEntropyMeanSerial(name, s, gradScale);
  const wg = 256;
  checkDims(name, { N });
  const bind = meanBindings();
  const wgsl = `
${declarations(bind)}
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
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
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
  if (s.perRow === 'invocation') return crossEntropyBackwardPerInvocation(name, s, inPlace);
  const wg = s.wg ?? 256;
  checkDims(name, { N, V, wg });
  const dst = inPlace ? 'logits' : 'dlogits';
  const bind = backwardBindings(inPlace);
  const wgsl = `
${rowWorkgroupMain(declarations(bind) + (inPlace ? '\n' : ''), wg, ['a'])}
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
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: 6 * N * V,
    bytes: 4 * (3 * N * V + N + 2),
    workgroups: [N, 1, 1],
  });
}

// ---- One invocation per row (perRow: 'invocation') ----

function crossEntropyForwardPerInvocation(name: string, s: CrossEntropyShape): RowKernel {
  const { N, V } = s;
  const wg = s.wg ?? 64;
  checkDims(name, { N, V, wg });
  const vec = V % 4 === 0;
  const g = perRowGrid(N, wg);
  const tgt = vec ? `logits[(row * ${u(V)} + tt) / 4u][tt % 4u]` : `logits[base + tt]`;
  const bind = forwardBindings(vec ? 'array<vec4<f32>>' : 'array<f32>');
  const wgsl = `
${declarations(bind)}
${perElementMain(wg, 'row', N, g.row)}
  let t = targets[row];
  if (t == ${u(IGNORE_INDEX)}) {
    losses[row] = 0.0;
    return;
  }
  let base = row * ${u(vec ? V / 4 : V)};
${rowStatsSerial(V, 'logits')}
  let tt = min(t, ${u(V - 1)});
  losses[row] = log(rowSum) + rowMax - ${tgt};
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: 4 * N * V,
    bytes: 4 * (2 * N * V + 2 * N),
    workgroups: g.workgroups,
  });
}

/** The mean kernel as one invocation summing the losses in order (no workgroup memory). */
function crossEntropyMeanSerial(name: string, s: CrossEntropyShape, gradScale: number): RowKernel {
  const { N } = s;
  checkDims(name, { N });
  const bind = meanBindings();
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(1, 1, 1)
fn main() {
  var tot = 0.0;
  var cnt = 0.0;
  for (var i = 0u; i < ${u(N)}; i++) {
    if (targets[i] != ${u(IGNORE_INDEX)}) {
      tot += losses[i];
      cnt += 1.0;
    }
  }
  let c = max(cnt, 1.0);
  meanOut[0] = tot / c;
  meanOut[1] = ${gradScale.toExponential()} / c;
}
`;
  return boundKernel(name, bind, wgsl, [1, 1, 1], {
    flops: N,
    bytes: 4 * (2 * N + 2),
    workgroups: [1, 1, 1],
  });
}

function crossEntropyBackwardPerInvocation(name: string, s: CrossEntropyShape, inPlace: boolean): RowKernel {
  const { N, V } = s;
  const wg = s.wg ?? 64;
  checkDims(name, { N, V, wg });
  const vec = V % 4 === 0;
  const n = vec ? V / 4 : V;
  const T = vec ? 'vec4<f32>' : 'f32';
  const g = perRowGrid(N, wg);
  const dst = inPlace ? 'logits' : 'dlogits';
  const onehot = vec
    ? 'select(vec4<f32>(0.0), vec4<f32>(1.0), vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(t))'
    : 'select(0.0, 1.0, i == t)';
  const bind = backwardBindings(inPlace, `array<${T}>`);
  const wgsl = `
${declarations(bind)}${inPlace ? '\n' : ''}
${perElementMain(wg, 'row', N, g.row)}
  let t = targets[row];
  let base = row * ${u(n)};
  if (t == ${u(IGNORE_INDEX)}) {
    for (var i = 0u; i < ${u(n)}; i++) { ${dst}[base + i] = ${T}(0.0); }
    return;
  }
${rowStatsSerial(V, 'logits')}
  let scale = meanOut[1];
  let inv = 1.0 / rowSum;
  for (var i = 0u; i < ${u(n)}; i++) {
    let p = exp(logits[base + i] - rowMax) * inv;
    ${dst}[base + i] = (p - ${onehot}) * scale;
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: 6 * N * V,
    bytes: 4 * (3 * N * V + N + 2),
    workgroups: g.workgroups,
  });
}

export const crossEntropyForward = defineKernel('ce_fwd', (_s: CrossEntropyShape) => forwardBindings(), { portable: (n, s) => crossEntropyForwardKernel(n, rowForm(s, s.V)) });
export const crossEntropyMean = defineKernel('ce_mean', (_s: CrossEntropyShape, _gradScale: number) => meanBindings(), {
  portable: (n, s, gradScale) => crossEntropyMeanKernel(n, rowForm(s, s.N), gradScale),
});
/** The graph's backward is in place: the logits buffer takes the gradient. */
export const crossEntropyBackward = defineKernel('ce_bwd', (_s: CrossEntropyShape) => backwardBindings(true), { portable: (n, s) => crossEntropyBackwardKernel(n, rowForm(s, s.V), true) });
