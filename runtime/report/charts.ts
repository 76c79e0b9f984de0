// The report's figures as Vega-Lite specs built from the run's data: validation perplexity over
// training (mean over seeds with a ±1 std band), expert assignment by label per MoE layer (the
// heat maps of Fan, Messmer, Jaggi 2024: rows = label values, columns = experts, each row
// normalised), and the load per expert over training.
import type { TopLevelSpec } from 'vega-lite';
import type { ExpertRecord } from '../store/types.js';
import type { TrialData } from './load.js';
import { alignExperts } from './align.js';
import { configName, stat } from './summary.js';

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

/** `accuracy`: the cluster task's test accuracy on a linear axis instead of perplexity on a log one. */
export function perplexitySpec(points: CurvePoint[], configs: string[], accuracy = false): TopLevelSpec {
  const x = { field: 'step', type: 'quantitative' as const, title: 'optimizer step' };
  const color = { field: 'config', type: 'nominal' as const, title: 'configuration', sort: configs };
  const y = accuracy
    ? { type: 'quantitative' as const, scale: { zero: false }, title: 'test accuracy' }
    : { type: 'quantitative' as const, scale: { type: 'log' as const }, title: 'validation perplexity (log)' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: accuracy ? 'Test accuracy over training' : 'Validation perplexity over training', subtitle: ['line: mean over the seeds that reached each step', 'band: ±1 std over seeds (none where only one seed reported)'] },
    width: 560,
    height: 320,
    data: { values: points },
    layer: [
      { transform: [{ filter: 'datum.seeds > 1' }], mark: { type: 'area', opacity: 0.18 }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color: { ...color, legend: null } } },
      { mark: { type: 'line', point: true }, encoding: { x, y: { ...y, field: 'mean' }, color: { ...color, legend: { labelLimit: 420 } }, tooltip: [{ field: 'seeds' }] } },
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

export function assignmentSpec(cells: AssignmentCell[], title: string, subtitle: string[]): TopLevelSpec {
  const values = [...new Set(cells.map((c) => c.value))];
  const experts = Math.max(1, ...cells.map((c) => c.expert + 1));
  const x = { field: 'expert', type: 'ordinal' as const, title: 'expert', axis: { labelAngle: 0 } };
  const y = { field: 'value', type: 'nominal' as const, sort: values, title: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    data: { values: cells },
    facet: { column: { field: 'layer', type: 'ordinal', header: { labelExpr: "'MoE layer ' + datum.value", title: null, labelFontSize: 12 } } },
    spec: {
      width: Math.max(120, 34 * experts),
      height: Math.max(60, 26 * values.length),
      layer: [
        { mark: 'rect', encoding: { x, y, color: { field: 'fraction', type: 'quantitative', scale: { domain: [0, 1], scheme: 'blues' }, title: 'fraction of row' } } },
        {
          mark: { type: 'text', fontSize: 9 },
          encoding: { x, y, text: { field: 'fraction', type: 'quantitative', format: '.2f' }, color: { condition: { test: 'datum.fraction > 0.55', value: 'white' }, value: 'black' } },
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
            x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
            y: { field: 'fraction', type: 'quantitative', title: 'fraction of routed tokens' },
            color: { field: 'expert', type: 'nominal', title: 'expert', sort: Array.from({ length: experts }, (_, i) => i) },
          },
        },
        { mark: { type: 'rule', strokeDash: [4, 4], color: '#888' }, encoding: { y: { datum: 1 / experts } } },
      ],
    },
  } as TopLevelSpec;
}
