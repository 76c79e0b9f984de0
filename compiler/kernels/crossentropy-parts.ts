// The LM head's cross-entropy over a vocabulary in parts (graph/lm-head.ts, addPartedLmHead): wte
// split under the binding limit, each part's logits folded into per-row statistics, so no buffer
// holds N×V logits. The whole-vocabulary kernels are in crossentropy.ts.
import { IGNORE_INDEX } from '../reference/crossentropy.js';
import { checkDims, rowWorkgroupMain } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { rowSoftmaxStats } from './crossentropy.js';
import { boundKernel, declarations, defineKernel, perElementMain, read, readWrite } from './definition.js';
import { GridLimitError } from './grid-limit.js';
import { MAX_GROUPS, perRowGrid, u } from './wgsl.js';

const partForwardBindings = () => [read('logits'), read('targets', 'array<u32>'), readWrite('stats')];
const partLossBindings = () => [read('stats'), read('targets', 'array<u32>'), readWrite('losses')];
const partBackwardBindings = () => [readWrite('logits'), read('targets', 'array<u32>'), read('meanOut'), read('stats')];

export interface CrossEntropyPartShape {
  /** Rows (tokens of the chunk). */
  N: number;
  /** The whole vocabulary (targets are clamped to V-1 in the forward, as crossEntropyForwardKernel does). */
  V: number;
  /** This part's first vocabulary row and its row count (logits per row here). */
  v0: number;
  rows: number;
  /** The first part starts the statistics instead of folding into them. */
  first?: boolean;
  wg?: number;
}

/** A vocabulary part's dimensions, checked: one workgroup of `wg` (default 256) per row. */
function partDims(name: string, s: CrossEntropyPartShape): CrossEntropyPartShape & { wg: number } {
  const wg = s.wg ?? 256;
  checkDims(name, { N: s.N, V: s.V, rows: s.rows, wg });
  if (s.N > MAX_GROUPS) throw new GridLimitError(`${name}: N=${s.N} exceeds ${MAX_GROUPS} workgroups in x`);
  return { ...s, wg };
}

/**
 * Folds one vocabulary part's logits (N × rows) into per-row statistics stats[3·row ..] = (running
 * max m, running Σ exp(l - m), target logit): m' = max(m, max_part), s' = s·exp(m - m') +
 * Σ_part exp(l - m'); the target logit is taken from the part that holds the target. One workgroup
 * per row; ignored rows are left alone. Bindings: logits (read), targets (read), stats (read_write).
 */
export function crossEntropyPartForwardKernel(name: string, s: CrossEntropyPartShape): RowKernel {
  const { N, V, v0, rows, wg } = partDims(name, s);
  const bind = partForwardBindings();
  const wgsl = `
${rowWorkgroupMain(declarations(bind), wg, ['a'])}
  let t = targets[row];
  if (t == ${u(IGNORE_INDEX)}) { return; }
  let base = row * ${u(rows)};
${rowSoftmaxStats(rows, wg, 'logits')}
  if (lid.x == 0u) {
    let tt = min(t, ${u(V - 1)});
    let here = tt >= ${u(v0)} && tt < ${u(v0 + rows)};
    let tl = select(0.0, logits[base + min(tt - min(tt, ${u(v0)}), ${u(rows - 1)})], here);
${s.first
    ? `    stats[3u * row] = rowMax;
    stats[3u * row + 1u] = rowSum;
    stats[3u * row + 2u] = tl;`
    : `    let m = stats[3u * row];
    let m2 = max(m, rowMax);
    stats[3u * row] = m2;
    stats[3u * row + 1u] = stats[3u * row + 1u] * exp(m - m2) + rowSum * exp(rowMax - m2);
    if (here) { stats[3u * row + 2u] = tl; }`}
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: 4 * N * rows, bytes: 4 * (2 * N * rows + 7 * N), workgroups: [N, 1, 1] });
}

/** losses[row] = log(s) + m - target logit from the statistics (0 for ignored rows). Bindings: stats (read), targets (read), losses (write). */
export function crossEntropyPartLossKernel(name: string, s: { N: number; V: number }): RowKernel {
  const { N } = s;
  const wg = 64;
  checkDims(name, { N });
  const g = perRowGrid(N, wg);
  const bind = partLossBindings();
  const wgsl = `
${declarations(bind)}
${perElementMain(wg, 'row', N, g.row)}
  if (targets[row] == ${u(IGNORE_INDEX)}) {
    losses[row] = 0.0;
    return;
  }
  losses[row] = log(stats[3u * row + 1u]) + stats[3u * row] - stats[3u * row + 2u];
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: 3 * N, bytes: 4 * (5 * N), workgroups: g.workgroups });
}

/**
 * dlogits = (exp(l - m) / s - onehot(target)) · meanOut[1] for one vocabulary part, in place, with
 * the row statistics of all parts (no reduction over the row here). Ignored rows get zeros; a
 * target ≥ V matches no logit (as crossEntropyBackwardKernel). Bindings: logits (read_write),
 * targets, meanOut, stats (read).
 */
export function crossEntropyPartBackwardKernel(name: string, s: CrossEntropyPartShape): RowKernel {
  const { N, v0, rows, wg } = partDims(name, s);
  const bind = partBackwardBindings();
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x;
  let t = targets[row];
  let base = row * ${u(rows)};
  if (t == ${u(IGNORE_INDEX)}) {
    for (var i = lid.x; i < ${u(rows)}; i += ${u(wg)}) { logits[base + i] = 0.0; }
    return;
  }
  let rowMax = stats[3u * row];
  let inv = 1.0 / stats[3u * row + 1u];
  let scale = meanOut[1];
  for (var i = lid.x; i < ${u(rows)}; i += ${u(wg)}) {
    let p = exp(logits[base + i] - rowMax) * inv;
    logits[base + i] = (p - select(0.0, 1.0, i + ${u(v0)} == t)) * scale;
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], { flops: 5 * N * rows, bytes: 4 * (2 * N * rows + 4 * N + 2), workgroups: [N, 1, 1] });
}

export const crossEntropyPartForward = defineKernel('ce_part_fwd', (_s: CrossEntropyPartShape) => partForwardBindings(), { portable: (n, s) => crossEntropyPartForwardKernel(n, s) });
export const crossEntropyPartLoss = defineKernel('ce_part_loss', (_s: { N: number; V: number }) => partLossBindings(), { portable: (n, s) => crossEntropyPartLossKernel(n, s) });
export const crossEntropyPartBackward = defineKernel('ce_part_bwd', (_s: CrossEntropyPartShape) => partBackwardBindings(), { portable: (n, s) => crossEntropyPartBackwardKernel(n, s) });
