// Effects with confidence intervals: for a swept dimension, the difference each value makes
// against a reference value, holding every other swept setting fixed and pairing trials by seed.
// Pairing removes what the seed does to both trials alike (the data order, the initialisation),
// so the interval is over the seed-to-seed variation of the difference itself.
//
// The interval is Student's t on the paired differences (n - 1 degrees of freedom), not a
// bootstrap: with the 2-5 seeds a study affords, a percentile bootstrap of n values can only
// return values between the smallest and largest difference and so claims far more certainty than
// the data holds, while the t-interval widens honestly (t = 12.7 for two seeds).
import jstat from 'jstat';
import type { TrialRow } from './summary.js';

/** The value a trial without a setting of the dimension has (a dense baseline's absent `baseline`). */
export const UNSET = 'none';

export interface Effect {
  dimension: string;
  value: string;
  reference: string;
  /** Held-fixed settings this row is about; empty: averaged over every other setting. */
  context: Record<string, string>;
  /**
   * One paired difference (value − reference) per seed; where the row averages over other
   * settings, the seed's mean difference over them, so n counts seeds, never pairs.
   */
  diffs: number[];
  n: number;
  mean: number;
  /** Sample standard deviation of the differences; null below two pairs. */
  sd: number | null;
  /** 95% t-interval of the mean difference; null below two pairs. */
  lo: number | null;
  hi: number | null;
  /** 'beyond noise': the interval excludes 0; 'within noise': it contains 0; 'one seed': no interval. */
  verdict: 'beyond noise' | 'within noise' | 'one seed';
}

export interface EffectOptions {
  /** Reference value per dimension (default: the first value seen, `none` first for `baseline`). */
  reference?: Record<string, string>;
  /** Dimensions to report (default: every swept one). */
  dimensions?: string[];
  /**
   * Which held-fixed settings get rows of their own: `[]` only the average over the others,
   * a list of dimensions one row per combination of their values, 'all' one row per combination of
   * every other dimension. Default: the average and, where there are other dimensions, 'all'.
   */
  by?: string[] | 'all';
  /** Confidence level (default 0.95). */
  level?: number;
}

const t = jstat.jStat.studentt;

/** Mean, sd and the t-interval of `diffs` at `level`. */
export function tInterval(diffs: number[], level = 0.95): Pick<Effect, 'n' | 'mean' | 'sd' | 'lo' | 'hi' | 'verdict'> {
  const n = diffs.length;
  const mean = diffs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, sd: null, lo: null, hi: null, verdict: 'one seed' };
  const sd = Math.sqrt(diffs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = t.inv(1 - (1 - level) / 2, n - 1) * sd / Math.sqrt(n);
  const lo = mean - half;
  const hi = mean + half;
  return { n, mean, sd, lo, hi, verdict: lo > 0 || hi < 0 ? 'beyond noise' : 'within noise' };
}

/** Swept dimensions of `rows` in first-seen order, each with its values in first-seen order. */
export function dimensionsOf(rows: TrialRow[]): Map<string, string[]> {
  const dims = new Map<string, string[]>();
  for (const r of rows) for (const k of Object.keys(r.params)) if (!dims.has(k)) dims.set(k, []);
  for (const r of rows) {
    for (const [k, vs] of dims) {
      const v = r.params[k] ?? UNSET;
      if (!vs.includes(v)) vs.push(v);
    }
  }
  for (const [k, vs] of dims) if (vs.includes(UNSET)) dims.set(k, [UNSET, ...vs.filter((v) => v !== UNSET)]);
  return dims;
}

const keyOf = (o: Record<string, string>) => JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));

/**
 * The effects of every value of each dimension against its reference, on `metric` (finished
 * trials only; a trial without the metric, or a pair missing one side, is left out and so shows in n).
 */
export function effects(rows: TrialRow[], metric: (r: TrialRow) => number | null, o: EffectOptions = {}): Effect[] {
  const done = rows.filter((r) => r.status === 'done' && r.seed !== null);
  const dims = dimensionsOf(done);
  const out: Effect[] = [];
  for (const dim of o.dimensions ?? [...dims.keys()]) {
    const values = dims.get(dim);
    if (!values || values.length < 2) continue;
    const reference = o.reference?.[dim] ?? values[0]!;
    const others = [...dims.keys()].filter((k) => k !== dim);
    const settings = (r: TrialRow) => Object.fromEntries(others.map((k) => [k, r.params[k] ?? UNSET]));
    // Reference trials by (every other setting, seed).
    const refs = new Map<string, number>();
    for (const r of done) {
      const m = metric(r);
      if ((r.params[dim] ?? UNSET) === reference && m !== null && Number.isFinite(m)) refs.set(`${keyOf(settings(r))}|${r.seed}`, m);
    }
    const groupings: string[][] = o.by === undefined ? (others.length ? [[], others] : [[]]) : [o.by === 'all' ? others : o.by.filter((k) => k !== dim)];
    for (const value of values.filter((v) => v !== reference)) {
      for (const by of groupings) {
        // Per group, each seed's differences (one per held-fixed setting the group averages over).
        const groups = new Map<string, { context: Record<string, string>; bySeed: Map<number, number[]> }>();
        for (const r of done) {
          if ((r.params[dim] ?? UNSET) !== value) continue;
          const m = metric(r);
          const s = settings(r);
          const base = refs.get(`${keyOf(s)}|${r.seed}`);
          if (m === null || !Number.isFinite(m) || base === undefined) continue;
          const context = Object.fromEntries(by.map((k) => [k, s[k]!]));
          const g = groups.get(keyOf(context)) ?? { context, bySeed: new Map() };
          g.bySeed.set(r.seed!, [...(g.bySeed.get(r.seed!) ?? []), m - base]);
          groups.set(keyOf(context), g);
        }
        for (const g of groups.values()) {
          const diffs = [...g.bySeed.values()].map((d) => d.reduce((a, b) => a + b, 0) / d.length);
          out.push({ dimension: dim, value, reference, context: g.context, diffs, ...tInterval(diffs, o.level) });
        }
      }
    }
  }
  return out;
}

// A zip block sweeps its paths together, so its paths are one dimension: no trial holds one fixed
// while another moves. Its value is the arm, `short=value; short=value; ...` in the block's order.
const ZIP = 'zip:';
const ARM_SEP = '; ';
const short = (k: string) => k.split('.').pop()!;

/** Rows with each zip block's paths folded into one dimension (`zip:PATH+PATH...`) whose value is the arm. */
export function foldZips(rows: TrialRow[], zips: readonly string[][]): TrialRow[] {
  const blocks = zips.filter((z) => z.length > 1);
  if (!blocks.length) return rows;
  return rows.map((r) => {
    const params = { ...r.params };
    for (const z of blocks) {
      if (!z.some((p) => p in params)) continue;
      params[`${ZIP}${z.join('+')}`] = z.map((p) => `${short(p)}=${params[p] ?? UNSET}`).join(ARM_SEP);
      for (const p of z) delete params[p];
    }
    return { ...r, params };
  });
}

/** The zip dimension a path belongs to in folded rows, or the path itself. */
export function foldedDimension(path: string, zips: readonly string[][]): string {
  const z = zips.find((b) => b.length > 1 && b.includes(path));
  return z ? `${ZIP}${z.join('+')}` : path;
}

const armParts = (arm: string) => arm.split(ARM_SEP);

/** The arms (folded zip values) in which `path` has `value`. */
export const armsWith = (arms: readonly string[], path: string, value: string) => arms.filter((a) => armParts(a).includes(`${short(path)}=${value}`));

/** What an effect compares: "top: 2 vs 1"; for a zip, only the settings in which the two arms differ. */
export function comparisonText(e: Pick<Effect, 'dimension' | 'value' | 'reference'>): string {
  if (!e.dimension.startsWith(ZIP)) return `${short(e.dimension)}: ${e.value} vs ${e.reference}`;
  const ref = armParts(e.reference);
  const differs = armParts(e.value).map((v, i) => [v, ref[i] ?? ''] as const).filter(([v, r]) => v !== r);
  return differs.length ? `${differs.map(([v]) => v).join(', ')} vs ${differs.map(([, r]) => r).join(', ')}` : `${e.value} vs itself`;
}

/** A held-fixed setting as the tables show it: "top=2", or a zip's whole arm. */
export const settingText = (k: string, v: string) => (k.startsWith(ZIP) ? armParts(v).join(',') : `${short(k)}=${v}`);

/** A short label for an effect: "unit: sequence vs token | top=2". */
export function effectLabel(e: Effect): string {
  const ctx = Object.entries(e.context).map(([k, v]) => settingText(k, v)).join(',');
  return `${comparisonText(e)}${ctx ? ` | ${ctx}` : ''}`;
}
