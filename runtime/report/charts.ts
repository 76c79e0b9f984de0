// The report's figures as Vega-Lite specs built from the run's data: validation perplexity over
// training (mean over seeds with a ±1 std band), expert assignment by label per MoE layer (the
// heat maps of Fan, Messmer, Jaggi 2024: rows = label values, columns = experts, each row
// normalised), and the load per expert over training.
import type { TopLevelSpec } from 'vega-lite';
import type { ExpertRecord } from '../store/types.js';
import type { TrialData } from './load.js';
import { alignExperts } from './align.js';
import { configName, stat } from './summary.js';
import type { ConfigLabel } from './labels.js';

export interface CurvePoint { config: string; step: number; mean: number; lo: number; hi: number; seeds: number }

/** Per configuration and eval step: mean validation perplexity over the seeds that reached that step, ± one std. */
export function perplexityCurves(trials: TrialData[], field = 'valid_ppl'): CurvePoint[] {
  const byKey = new Map<string, { config: string; step: number; v: number[] }>();
  for (const t of trials) {
    for (const e of t.evals) {
      const config = configName(t.name);
      const key = `${config}\u0000${e.step}`;
      const g = byKey.get(key) ?? { config, step: e.step, v: [] };
      g.v.push(e[field] as number);
      byKey.set(key, g);
    }
  }
  return [...byKey.values()].map(({ config, step, v }) => {
    const s = stat(v);
    const mean = s.mean ?? NaN;
    const sd = s.std ?? 0;
    // A log axis cannot show a band reaching zero; clip its lower edge just above it.
    return { config, step, mean, lo: Math.max(mean - sd, mean * 1e-3), hi: mean + sd, seeds: s.n };
  }).sort((a, b) => (a.config < b.config ? -1 : a.config > b.config ? 1 : a.step - b.step));
}

/** Optimizer steps are whole numbers: ticks at integers only, printed without decimals. */
export const stepAxis = { tickMinStep: 1, format: 'd' };

/**
 * `accuracy`: the cluster task's test accuracy on a linear axis instead of perplexity on a log one.
 * `labels`: the legend's short name per configuration (labels.ts); the full key is in the tooltip
 * and in the table the report prints beside the figure. Both axes are fitted to the data.
 */
export function perplexitySpec(points: CurvePoint[], labels: ConfigLabel[], accuracy = false): TopLevelSpec {
  const short = new Map(labels.map((l) => [l.config, l.label]));
  const values = points.map((p) => ({ ...p, label: short.get(p.config) ?? p.config }));
  const x = { field: 'step', type: 'quantitative' as const, title: 'optimizer step', scale: { nice: false }, axis: stepAxis };
  const color = { field: 'label', type: 'nominal' as const, title: 'configuration', sort: labels.map((l) => l.label) };
  // Fitted to the curves and their bands (a band reaching towards zero on the log axis is cut at
  // half its mean, and clipped), with a little room above and below.
  const finite = points.flatMap((p) => [accuracy ? p.lo : Math.max(p.lo, p.mean / 2), p.hi, p.mean]).filter((v) => Number.isFinite(v) && (accuracy || v > 0));
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const span = hi - lo || Math.abs(hi) * 0.1 || 1;
  const pad = hi > lo ? (hi / lo) ** 0.05 : 1.05;
  const domain = !finite.length ? undefined : accuracy ? [lo - 0.05 * span, hi + 0.05 * span] : [lo / pad, hi * pad];
  const y = accuracy
    ? { type: 'quantitative' as const, scale: { zero: false, nice: false, ...(domain ? { domain } : {}) }, title: 'test accuracy' }
    : { type: 'quantitative' as const, scale: { type: 'log' as const, nice: false, ...(domain ? { domain } : {}) }, title: 'validation perplexity (log)' };
  const fmt = accuracy ? '.3f' : '.2f';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: accuracy ? 'Test accuracy over training' : 'Validation perplexity over training', subtitle: ['line: mean over the seeds that reached each step', 'band: ±1 std over seeds (none where only one seed reported)'] },
    width: 560,
    height: 320,
    data: { values },
    layer: [
      { transform: [{ filter: 'datum.seeds > 1' }], mark: { type: 'area', opacity: 0.18, clip: true }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color: { ...color, legend: null } } },
      {
        mark: { type: 'line', point: true, clip: true },
        encoding: {
          x, y: { ...y, field: 'mean' }, color: { ...color, legend: { labelLimit: 280 } },
          tooltip: [
            { field: 'label', title: 'configuration' }, { field: 'config', title: 'full key' }, { field: 'step', title: 'step', format: 'd' },
            { field: 'mean', title: accuracy ? 'accuracy (mean)' : 'perplexity (mean)', format: fmt }, { field: 'lo', title: '−1 std', format: fmt }, { field: 'hi', title: '+1 std', format: fmt }, { field: 'seeds', title: 'seeds' },
          ],
        },
      },
    ],
    // One legend, from the lines: the band's pale swatches would hide the colours.
    resolve: { legend: { color: 'independent' } },
  } as TopLevelSpec;
}

export interface AssignmentCell { layer: number; value: string; expert: number; fraction: number; tokens: number }

/**
 * Expert assignment on one data set by one label: for each trial, its last evaluation's counts;
 * summed over `trials` (the seeds of a configuration) after each seed's experts are matched, layer
 * by layer, to the first seed's (align.ts), so expert e is "the same" expert in every seed; each
 * label value's row normalised to 1.
 */
export function assignment(trials: TrialData[], data: string, label: string): { cells: AssignmentCell[]; steps: number[]; seeds: number } {
  const sum = new Map<string, number[]>();
  const steps = new Set<number>();
  const reference = new Map<number, Record<string, number[]>>();
  let seeds = 0;
  for (const t of trials) {
    const recs = t.experts.filter((r) => r.data === data && r.label === label);
    const last = recs.at(-1);
    if (!last) continue;
    seeds++;
    steps.add(last.step);
    for (const l of last.layers) {
      const ref = reference.get(l.layer);
      if (!ref) reference.set(l.layer, l.counts);
      const to = ref ? alignExperts(ref, l.counts) : undefined;
      for (const [value, counts] of Object.entries(l.counts)) {
        const key = `${l.layer}\u0000${value}`;
        const acc = sum.get(key) ?? counts.map(() => 0);
        counts.forEach((c, e) => {
          const at = to ? to[e]! : e;
          acc[at] = (acc[at] ?? 0) + c;
        });
        sum.set(key, acc);
      }
    }
  }
  const cells: AssignmentCell[] = [];
  for (const [key, counts] of sum) {
    const [layer, value] = key.split('\u0000') as [string, string];
    const total = counts.reduce((a, b) => a + b, 0);
    counts.forEach((c, expert) => cells.push({ layer: Number(layer), value, expert, fraction: total > 0 ? c / total : 0, tokens: c }));
  }
  return { cells, steps: [...steps].sort((a, b) => a - b), seeds };
}

/** log2 of a cell's share against its expert's mean share over the label values of its layer. */
export interface LiftCell extends AssignmentCell { lift: number; mean: number }

/**
 * Each cell against its column: how much more (or less) of its row an expert takes than it takes on
 * average over the label values, as log2 of the ratio. Specialisation is a difference between rows,
 * and it is small next to the load itself (a fraction colour from 0 to 1 shows 0.75 and 0.82 alike).
 */
export function withLift(cells: AssignmentCell[]): LiftCell[] {
  const mean = new Map<string, { sum: number; n: number }>();
  for (const c of cells) {
    const k = `${c.layer}\u0000${c.expert}`;
    const m = mean.get(k) ?? { sum: 0, n: 0 };
    m.sum += c.fraction;
    m.n++;
    mean.set(k, m);
  }
  // Ratios of shares far below uniform are noise of a few tokens and would take the whole colour
  // range: both sides are floored at a tenth of the uniform share.
  const experts = Math.max(1, ...cells.map((c) => c.expert + 1));
  const floor = 0.1 / experts;
  return cells.map((c) => {
    const m = mean.get(`${c.layer}\u0000${c.expert}`)!;
    const avg = m.sum / m.n;
    return { ...c, mean: avg, lift: Math.log2(Math.max(c.fraction, floor) / Math.max(avg, floor)) };
  });
}

/** The colour domain of the lift: symmetric, fitted to the data, at least ±0.1 (7%) and at most ±3 (8×, clamped beyond). */
export function liftDomain(cells: LiftCell[]): [number, number] {
  const m = Math.min(3, Math.max(0.1, ...cells.map((c) => Math.abs(c.lift))));
  return [-m, m];
}

export function assignmentSpec(cells: AssignmentCell[], title: string, subtitle: string[], label = 'label'): TopLevelSpec {
  const values = [...new Set(cells.map((c) => c.value))];
  const experts = Math.max(1, ...cells.map((c) => c.expert + 1));
  const lifted = withLift(cells);
  const [lo, hi] = liftDomain(lifted);
  const x = { field: 'expert', type: 'ordinal' as const, title: 'expert', axis: { labelAngle: 0 } };
  const y = { field: 'value', type: 'nominal' as const, sort: values, title: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: [...subtitle, `colour: fraction ÷ the expert's mean over ${label}s (log scale)`] },
    data: { values: lifted },
    facet: { column: { field: 'layer', type: 'ordinal', header: { labelExpr: "'MoE layer ' + datum.value", title: null, labelFontSize: 12 } } },
    spec: {
      width: Math.max(120, 34 * experts),
      height: Math.max(60, 26 * values.length),
      layer: [
        {
          mark: 'rect',
          encoding: {
            x,
            y,
            color: {
              field: 'lift',
              type: 'quantitative',
              scale: { domain: [lo, hi], domainMid: 0, scheme: 'blueorange', clamp: true },
              title: ['share vs', "expert's mean"],
              legend: { labelExpr: "format(pow(2, datum.value), '.2f') + '×'", tickCount: 5 },
            },
            tooltip: [
              { field: 'layer', title: 'MoE layer' },
              { field: 'value', title: label },
              { field: 'expert' },
              { field: 'fraction', format: '.3f', title: 'fraction of row' },
              { field: 'mean', format: '.3f', title: `expert's mean over ${label}s` },
              { field: 'tokens', title: 'assignments' },
            ],
          },
        },
        {
          mark: { type: 'text', fontSize: 9 },
          encoding: { x, y, text: { field: 'fraction', type: 'quantitative', format: '.2f' }, color: { condition: { test: `abs(datum.lift) > ${0.6 * hi}`, value: 'white' }, value: 'black' } },
        },
      ],
    },
  } as TopLevelSpec;
}

export interface LoadPoint { layer: number; step: number; expert: number; fraction: number }

/** Fraction of all routed tokens per expert at each evaluation (all label values together), mean over trials. */
export function loadOverTraining(trials: TrialData[], data: string, label: string): LoadPoint[] {
  const acc = new Map<string, { layer: number; step: number; expert: number; v: number[] }>();
  for (const t of trials) {
    for (const r of t.experts.filter((x: ExpertRecord) => x.data === data && x.label === label)) {
      for (const l of r.layers) {
        const tot: number[] = [];
        for (const counts of Object.values(l.counts)) counts.forEach((c, e) => { tot[e] = (tot[e] ?? 0) + c; });
        const all = tot.reduce((a, b) => a + b, 0);
        tot.forEach((c, expert) => {
          const key = `${l.layer}/${r.step}/${expert}`;
          const g = acc.get(key) ?? { layer: l.layer, step: r.step, expert, v: [] };
          g.v.push(all > 0 ? c / all : 0);
          acc.set(key, g);
        });
      }
    }
  }
  return [...acc.values()].map((g) => ({ layer: g.layer, step: g.step, expert: g.expert, fraction: stat(g.v).mean ?? 0 })).sort((a, b) => a.layer - b.layer || a.expert - b.expert || a.step - b.step);
}

export function loadSpec(points: LoadPoint[], title: string, subtitle: string[]): TopLevelSpec {
  const experts = Math.max(1, ...points.map((p) => p.expert + 1));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    data: { values: points },
    facet: { column: { field: 'layer', type: 'ordinal', header: { labelExpr: "'MoE layer ' + datum.value", title: null, labelFontSize: 12 } } },
    spec: {
      width: 260,
      height: 180,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'step', type: 'quantitative', title: 'optimizer step', scale: { nice: false }, axis: stepAxis },
            y: { field: 'fraction', type: 'quantitative', title: 'fraction of routed tokens', scale: { zero: false } },
            tooltip: [{ field: 'layer', title: 'MoE layer' }, { field: 'expert' }, { field: 'step', format: 'd' }, { field: 'fraction', format: '.3f' }],
            color: { field: 'expert', type: 'nominal', title: 'expert', sort: Array.from({ length: experts }, (_, i) => i) },
          },
        },
        { mark: { type: 'rule', strokeDash: [4, 4], color: '#888' }, encoding: { y: { datum: 1 / experts } } },
      ],
    },
  } as TopLevelSpec;
}
