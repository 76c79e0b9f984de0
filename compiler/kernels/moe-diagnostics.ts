// Kernels of the MoE load diagnostics (issue 18): the training loss's parts, a per-layer window of
// routing statistics accumulated on the GPU step after step, and the summary the host reads at a
// logging step. References: reference/moe-diagnostics.ts. Nothing here is read inside a step.
import { STAT } from '../reference/moe.js';
import { quantileAt, SUMMARY_COUNTS, SUMMARY_FIELDS, summaryLength, WINDOW, windowLength } from '../reference/moe-diagnostics.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { f, u } from './wgsl.js';

/**
 * The weighted auxiliary losses as their own figures: bal += λ·balance·scale, zl += ζ·z·scale (the
 * terms moe_aux_loss adds into train_loss). Bindings: stats (read), bal, zl (read_write).
 */
const auxPartsBindings = () => [read('stats'), readWrite('bal'), readWrite('zl')];
const windowAddBindings = () => [read('stats'), readWrite('window')];
const summaryBindings = () => [readWrite('window'), readWrite('summary')];

export function moeAuxPartsKernel(name: string, balance: number, zloss: number, scale: number): RowKernel {
  const b = auxPartsBindings();
  const wgsl = `
${declarations(b)}
@compute @workgroup_size(1, 1, 1)
fn main() {
  bal[0] += ${f(balance)} * stats[${u(STAT.balance)}] * ${f(scale)};
  zl[0] += ${f(zloss)} * stats[${u(STAT.z)}] * ${f(scale)};
}
`;
  return boundKernel(name, b, wgsl, [1, 1, 1], { flops: 4, bytes: 24, workgroups: [1, 1, 1] });
}

const WG = 64;

/** window += this step's statistics (layout WINDOW). Bindings: stats (read), window (read_write). */
export function moeWindowAddKernel(name: string, experts: number): RowKernel {
  const E = experts;
  const b = windowAddBindings();
  const wgsl = `
${declarations(b)}
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  for (var e = t; e < ${u(E)}; e += ${u(WG)}) {
    window[${u(WINDOW.counts)} + e] += stats[${u(STAT.counts)} + e];
  }
  if (t == 0u) {
    window[${u(WINDOW.steps)}] += 1.0;
    window[${u(WINDOW.dropped)}] += stats[${u(STAT.dropped)}];
    window[${u(WINDOW.entropy)}] += stats[${u(STAT.entropy)}];
    window[${u(WINDOW.balance)}] += stats[${u(STAT.balance)}];
    window[${u(WINDOW.z)}] += stats[${u(STAT.z)}];
  }
}
`;
  return boundKernel(name, b, wgsl, [WG, 1, 1], { flops: E + 5, bytes: 4 * (3 * E + 15), workgroups: [1, 1, 1] });
}

/**
 * Summarises a window (layout SUMMARY_FIELDS, then the E counts) and zeroes it for the next one:
 * each expert's count is placed at its rank (ties by index) in workgroup memory, then one thread
 * reads order statistics and interpolated percentiles. Bindings: window (read_write), summary (write).
 */
export function moeLoadSummaryKernel(name: string, experts: number): RowKernel {
  const E = experts;
  const at = (k: (typeof SUMMARY_FIELDS)[number]) => u(SUMMARY_FIELDS.indexOf(k));
  const q = (p: number) => {
    const { lo, hi, frac } = quantileAt(p, E);
    return `sorted[${u(lo)}] + (sorted[${u(hi)}] - sorted[${u(lo)}]) * ${f(frac)}`;
  };
  const b = summaryBindings();
  const wgsl = `
${declarations(b)}
var<workgroup> vals: array<f32, ${E}>;
var<workgroup> sorted: array<f32, ${E}>;
@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  for (var e = t; e < ${u(E)}; e += ${u(WG)}) { vals[e] = window[${u(WINDOW.counts)} + e]; }
  workgroupBarrier();
  for (var e = t; e < ${u(E)}; e += ${u(WG)}) {
    let v = vals[e];
    var rank = 0u;
    for (var j = 0u; j < ${u(E)}; j++) {
      let w = vals[j];
      if (w < v || (w == v && j < e)) { rank += 1u; }
    }
    sorted[rank] = v;
    summary[${u(SUMMARY_COUNTS)} + e] = v;
    window[${u(WINDOW.counts)} + e] = 0.0;
  }
  workgroupBarrier();
  if (t == 0u) {
    var sum = 0.0;
    var dead = 0.0;
    for (var e = 0u; e < ${u(E)}; e++) {
      sum += vals[e];
      if (vals[e] == 0.0) { dead += 1.0; }
    }
    let mean = sum / ${f(E)};
    let mx = sorted[${u(E - 1)}];
    let steps = window[${u(WINDOW.steps)}];
    summary[${at('steps')}] = steps;
    summary[${at('min')}] = sorted[0u];
    summary[${at('p10')}] = ${q(0.1)};
    summary[${at('median')}] = ${q(0.5)};
    summary[${at('p90')}] = ${q(0.9)};
    summary[${at('max')}] = mx;
    summary[${at('mean')}] = mean;
    summary[${at('overload')}] = select(0.0, mx / mean, mean > 0.0);
    summary[${at('dead')}] = dead;
    summary[${at('dropped')}] = select(0.0, window[${u(WINDOW.dropped)}] / steps, steps > 0.0);
    summary[${at('entropy')}] = select(0.0, window[${u(WINDOW.entropy)}] / steps, steps > 0.0);
    summary[${at('balance')}] = select(0.0, window[${u(WINDOW.balance)}] / steps, steps > 0.0);
    summary[${at('z')}] = select(0.0, window[${u(WINDOW.z)}] / steps, steps > 0.0);
    for (var k = 0u; k < ${u(WINDOW.counts)}; k++) { window[k] = 0.0; }
  }
}
`;
  return boundKernel(name, b, wgsl, [WG, 1, 1], { flops: E * E + 20, bytes: 4 * (2 * windowLength(E) + summaryLength(E)), workgroups: [1, 1, 1] });
}

export const moeAuxParts = defineKernel('moe_aux_parts', (_balance: number, _zloss: number, _scale: number) => auxPartsBindings(), { portable: (n, balance, zloss, scale) => moeAuxPartsKernel(n, balance, zloss, scale) });
export const moeWindowAdd = defineKernel('moe_window_add', (_experts: number) => windowAddBindings(), { portable: (n, experts) => moeWindowAddKernel(n, experts) });
export const moeLoadSummary = defineKernel('moe_load_summary', (_experts: number) => summaryBindings(), { portable: (n, experts) => moeLoadSummaryKernel(n, experts) });
