// CPU references for the MoE load diagnostics (compiler/kernels/moe-diagnostics.ts): a window of
// training steps accumulates each routing layer's per-step statistics (STAT in reference/moe.ts) on
// the GPU, and at a logging step one summary pass turns the window into the figures the host logs.
// f32 rounding follows the kernels' order of operations (Math.fround), so results agree bit for bit.

import { STAT } from './moe.js';

/** Window accumulator layout (f32): steps, Σ dropped, Σ entropy, Σ balance, Σ z, then E token counts. */
export const WINDOW = { steps: 0, dropped: 1, entropy: 2, balance: 3, z: 4, counts: 5 } as const;
export const windowLength = (experts: number) => WINDOW.counts + experts;

/**
 * Summary row fields (f32), in order; then the window's E token counts. Tokens per expert are the
 * assignments each expert was given over the window (before capacity drops); `dead` counts experts
 * given none; dropped, entropy, balance and z are means over the window's steps (unweighted losses).
 */
export const SUMMARY_FIELDS = ['steps', 'min', 'p10', 'median', 'p90', 'max', 'mean', 'overload', 'dead', 'dropped', 'entropy', 'balance', 'z'] as const;
export type SummaryField = (typeof SUMMARY_FIELDS)[number];
export const summaryLength = (experts: number) => SUMMARY_FIELDS.length + experts;
export const SUMMARY_COUNTS = SUMMARY_FIELDS.length;

/** Percentiles by linear interpolation between order statistics (numpy's default): lower index and fraction. */
export function quantileAt(q: number, experts: number): { lo: number; hi: number; frac: number } {
  const pos = q * (experts - 1);
  const lo = Math.floor(pos);
  return { lo, hi: Math.min(experts - 1, lo + 1), frac: Math.fround(pos - lo) };
}

const fr = Math.fround;

/** window += one step's statistics (what moe_window_add does after each micro-batch's forward). */
export function windowAddReference(window: Float32Array, stats: Float32Array, experts: number): void {
  window[WINDOW.steps] = fr(window[WINDOW.steps]! + 1);
  window[WINDOW.dropped] = fr(window[WINDOW.dropped]! + stats[STAT.dropped]!);
  window[WINDOW.entropy] = fr(window[WINDOW.entropy]! + stats[STAT.entropy]!);
  window[WINDOW.balance] = fr(window[WINDOW.balance]! + stats[STAT.balance]!);
  window[WINDOW.z] = fr(window[WINDOW.z]! + stats[STAT.z]!);
  for (let e = 0; e < experts; e++) window[WINDOW.counts + e] = fr(window[WINDOW.counts + e]! + stats[STAT.counts + e]!);
}

/** The summary row of a window (what moe_load_summary writes); the kernel then zeroes the window. */
export function loadSummaryReference(window: Float32Array, experts: number): Float32Array {
  const E = experts;
  const counts = Array.from(window.subarray(WINDOW.counts, WINDOW.counts + E));
  const sorted = [...counts].sort((a, b) => a - b);
  const q = (p: number) => {
    const { lo, hi, frac } = quantileAt(p, E);
    return fr(sorted[lo]! + fr(fr(sorted[hi]! - sorted[lo]!) * frac));
  };
  let sum = 0;
  let dead = 0;
  for (const c of counts) {
    sum = fr(sum + c);
    if (c === 0) dead++;
  }
  const mean = fr(sum / E);
  const max = sorted[E - 1]!;
  const steps = window[WINDOW.steps]!;
  const per = (v: number) => (steps > 0 ? fr(v / steps) : 0);
  const values: Record<SummaryField, number> = {
    steps, min: sorted[0]!, p10: q(0.1), median: q(0.5), p90: q(0.9), max, mean,
    overload: mean > 0 ? fr(max / mean) : 0, dead,
    dropped: per(window[WINDOW.dropped]!), entropy: per(window[WINDOW.entropy]!), balance: per(window[WINDOW.balance]!), z: per(window[WINDOW.z]!),
  };
  const out = new Float32Array(summaryLength(E));
  SUMMARY_FIELDS.forEach((k, i) => { out[i] = values[k]; });
  out.set(counts, SUMMARY_COUNTS);
  return out;
}
