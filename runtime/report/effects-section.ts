// The report's "Effects" section: for each figure a study compares (final validation perplexity,
// or the cluster task's accuracy and dispatch entropy; the experts' specialisation by label), the
// effect of every swept value against its reference, paired by seed, with its 95% t-interval, as
// tables and as a forest plot.
import type { TopLevelSpec } from 'vega-lite';
import { armsWith, comparisonText, effectLabel, effects, foldedDimension, foldZips, settingText, type Effect } from './effects.js';
import type { RunData } from './load.js';
import { specialisation } from './specialisation.js';
import type { TrialRow } from './summary.js';
import { csv, markdownTable } from './tables.js';

export interface EffectMetric {
  /** What the figure is, for headings: "final validation perplexity". */
  name: string;
  /** Short column-safe key: "ppl". */
  key: string;
  digits: number;
  value: (r: TrialRow) => number | null;
  /** Which direction is better, for the reader ("lower is better"). */
  better: 'lower' | 'higher' | null;
}

/** Mean over MoE layers of the mean JS divergence between label values, from the trial's last record on (data, label). */
function trialSpecialisation(experts: RunData['trials'][number]['experts'], data: string, label: string): number | null {
  const last = experts.filter((r) => r.data === data && r.label === label).at(-1);
  if (!last?.layers.length) return null;
  return last.layers.reduce((a, l) => a + specialisation(l.layer, l.counts).meanJsd, 0) / last.layers.length;
}

/** The figures the effects are computed on, for this run. */
export function effectMetrics(run: RunData, classification: boolean): EffectMetric[] {
  const out: EffectMetric[] = classification
    ? [
      { name: 'test accuracy', key: 'acc', digits: 4, value: (r) => r.acc_avg, better: 'higher' },
      { name: 'dispatch entropy', key: 'entropy', digits: 4, value: (r) => r.entropy_avg, better: 'lower' },
    ]
    : [{ name: 'final validation perplexity', key: 'ppl', digits: 3, value: (r) => r.ppl_avg, better: 'lower' }];
  const pairs = new Map<string, { data: string; label: string }>();
  for (const t of run.trials) for (const r of t.experts) pairs.set(`${r.data}/${r.label}`, { data: r.data, label: r.label });
  const byId = new Map(run.trials.map((t) => [t.id, t]));
  for (const { data, label } of pairs.values()) {
    out.push({
      name: `specialisation by ${label} on ${data} (mean JS divergence, bits)`, key: `jsd.${data}.${label}`, digits: 4, better: null,
      value: (r) => trialSpecialisation(byId.get(r.id)?.experts ?? [], data, label),
    });
  }
  return out;
}

const signed = (x: number, d: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(d)}`;

function interval(e: Effect, d: number): string {
  return e.lo === null || e.hi === null ? '—' : `[${signed(e.lo, d)}, ${signed(e.hi, d)}]`;
}

/** Rows of one metric's effect table. */
export function effectRows(es: Effect[], digits: number): string[][] {
  return es.map((e) => [
    comparisonText(e),
    Object.keys(e.context).length ? Object.entries(e.context).map(([k, v]) => settingText(k, v)).join(', ') : 'averaged over the rest',
    String(e.n), signed(e.mean, digits), interval(e, digits), e.verdict,
  ]);
}

export const effectHead = ['comparison', 'held fixed', 'seeds', 'mean difference', '95% interval', 'verdict'];

/** A forest plot: one row per comparison, the mean difference and its interval, a rule at zero. */
export function forestSpec(es: Effect[], metric: EffectMetric): TopLevelSpec {
  const values = es.map((e) => ({ label: effectLabel(e), mean: e.mean, lo: e.lo ?? e.mean, hi: e.hi ?? e.mean, n: e.n, verdict: e.verdict }));
  const order = values.map((v) => v.label);
  const y = { field: 'label', type: 'nominal' as const, sort: order, title: null, axis: { labelLimit: 560 } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Effects on ${metric.name}`, subtitle: ['mean paired difference (value − reference) over seeds, 95% t-interval', metric.better ? `${metric.better} is better; intervals crossing 0 are within seed noise` : 'intervals crossing 0 are within seed noise'] },
    width: 420,
    height: Math.max(60, 22 * values.length),
    data: { values },
    layer: [
      { mark: { type: 'rule', strokeDash: [4, 3], color: '#888' }, data: { values: [{ zero: 0 }] }, encoding: { x: { field: 'zero', type: 'quantitative' } } },
      { mark: { type: 'rule', strokeWidth: 2 }, encoding: { y, x: { field: 'lo', type: 'quantitative', title: `difference in ${metric.name}` }, x2: { field: 'hi' }, color: { field: 'verdict', type: 'nominal', scale: { domain: ['beyond noise', 'within noise', 'one seed'], range: ['#d62728', '#1f77b4', '#999999'] } } } },
      { mark: { type: 'point', filled: true, size: 50 }, encoding: { y, x: { field: 'mean', type: 'quantitative' }, color: { field: 'verdict', type: 'nominal' }, tooltip: [{ field: 'label' }, { field: 'mean', format: '.4f' }, { field: 'lo', format: '.4f' }, { field: 'hi', format: '.4f' }, { field: 'n', title: 'seeds' }] } },
    ],
  } as TopLevelSpec;
}

export interface EffectsResult {
  md: string[];
  csv: string;
  /** Per metric: the effects of the sweep's `compare` lines (`named`), then every dimension's. */
  json: { metric: string; named: Effect[]; effects: Effect[] }[];
  /** Forest plots to draw, one per metric with effects. */
  plots: { spec: TopLevelSpec; name: string; alt: string }[];
}

/** The section for a run's trial rows: markdown, a CSV of every effect, and the plots to draw. */
export function effectsSection(run: RunData, trialRows: TrialRow[], classification: boolean): EffectsResult {
  const md: string[] = ['## Effects', ''];
  const zips = run.index.zips ?? [];
  const trials = foldZips(trialRows, zips);
  const rows: unknown[][] = [];
  const json: EffectsResult['json'] = [];
  const plots: EffectsResult['plots'] = [];
  const seeds = new Set(trials.filter((t) => t.status === 'done').map((t) => t.seed));
  md.push(`Each swept value against the sweep's first value of that dimension (for \`baseline\`, the MoE model it matches), holding every other swept setting fixed and pairing trials by seed (${seeds.size} seed${seeds.size === 1 ? '' : 's'} finished). "averaged over the rest" takes each seed's mean difference over the other settings, so \`seeds\` counts seeds, never pairs. Interval: Student's t on the paired differences, 95%, n − 1 degrees of freedom (a bootstrap of 2–5 values would claim more certainty than they hold). "beyond noise": the interval excludes 0.`, '');
  if (zips.some((z) => z.length > 1)) md.push(`A \`zip\` block is one dimension (its settings move together, so none of them can be held fixed alone): its arms are compared with its first arm, and each row names only the settings in which the two arms differ.`, '');
  // A compare line naming a zipped path compares the zip's arms; its reference is the arm whose path has that value.
  const given = run.index.comparisons ?? [];
  const notes: string[] = [];
  const named = given.map((c) => {
    const dim = foldedDimension(c.path, zips);
    if (dim === c.path) return c;
    const arms = [...new Set(trials.map((t) => t.params[dim]).filter((v): v is string => v !== undefined))];
    const ref = c.reference === null ? [] : armsWith(arms, c.path, c.reference);
    if (c.reference !== null && ref.length !== 1) notes.push(`\`${c.path}\` ${c.reference} names ${ref.length} arms of its zip, not one: compared with the zip's first arm instead.`);
    return { path: dim, reference: ref.length === 1 ? ref[0]! : null, by: c.by.map((b) => foldedDimension(b, zips)) };
  });
  if (given.length) md.push(`The sweep names ${given.length} comparison${given.length === 1 ? '' : 's'} (\`compare\`): ${given.map((c) => `\`${c.path}\`${c.reference ? ` against ${c.reference}` : ''}${c.by.length ? ` by ${c.by.join(', ')}` : ''}`).join('; ')}. They come first in each table; every dimension's effects follow.${notes.length ? ` ${notes.join(' ')}` : ''}`, '');
  for (const m of effectMetrics(run, classification)) {
    const mine = named.flatMap((c) => effects(trials, m.value, { dimensions: [c.path], by: c.by, ...(c.reference ? { reference: { [c.path]: c.reference } } : {}) }));
    const es = effects(trials, m.value);
    if (!es.length && !mine.length) continue;
    json.push({ metric: m.name, named: mine, effects: es });
    md.push(`### ${m.name[0]!.toUpperCase()}${m.name.slice(1)}${m.better ? ` (${m.better} is better)` : ''}`, '');
    if (mine.length) md.push('Named comparisons:', '', markdownTable(effectHead, effectRows(mine, m.digits), [2, 3]), '', 'Every dimension:', '');
    md.push(markdownTable(effectHead, effectRows(es, m.digits), [2, 3]), '');
    for (const [kind, list] of [['named', mine], ['dimension', es]] as const) {
      for (const e of list) rows.push([m.name, kind, e.dimension, e.value, e.reference, JSON.stringify(e.context), e.n, e.mean, e.sd, e.lo, e.hi, e.verdict]);
    }
    plots.push({ spec: forestSpec(mine.length ? mine : es, m), name: `effects-${m.key.replace(/[^A-Za-z0-9.]+/g, '-')}`, alt: `effects on ${m.name}` });
  }
  if (!json.length) md.push('No swept dimension has two values with finished trials of the same seed: no effect to estimate.', '');
  return { md, csv: csv(['metric', 'kind', 'dimension', 'value', 'reference', 'held_fixed', 'seeds', 'mean_difference', 'sd', 'ci95_lo', 'ci95_hi', 'verdict'], rows), json, plots };
}
