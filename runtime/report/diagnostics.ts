// The report's MoE load diagnostics (issue 18): from the `moe` entries of metrics.jsonl's train
// records, one figure per sweep (a row per figure, a column per MoE layer, a line per configuration
// with its mean ± std band over seeds) and a table at the last logged step, mean ± std over seeds.
import type { TopLevelSpec } from 'vega-lite';
import type { MoeLayerMetric, TrainMetric } from '../store/types.js';
import type { TrialData } from './load.js';
import { configName, stat } from './summary.js';
import { markdownTable, pm } from './tables.js';
import { stepAxis } from './charts.js';
import type { ConfigLabel } from './labels.js';

/** The figures shown, with how each is read from a layer's entry. */
export const DIAGNOSTICS: { key: string; title: string; of: (m: MoeLayerMetric) => number }[] = [
  { key: 'overload', title: 'overload (max / mean load)', of: (m) => m.overload },
  { key: 'dead', title: 'dead experts', of: (m) => m.dead },
  { key: 'max_share', title: "busiest expert's share of tokens", of: (m) => m.maxShare },
  { key: 'p10_p90', title: 'tokens per expert, p90 / p10', of: (m) => (m.tokens.p10 > 0 ? m.tokens.p90 / m.tokens.p10 : NaN) },
  { key: 'dropped', title: 'dropped fraction', of: (m) => m.dropped },
  { key: 'entropy', title: 'router entropy (nats)', of: (m) => m.entropy },
];

export interface DiagnosticPoint { config: string; layer: number; figure: string; step: number; mean: number; lo: number; hi: number; seeds: number }

const trainRecords = (t: TrialData) => t.metrics.filter((m): m is TrainMetric => m.kind === 'train' && Array.isArray((m as TrainMetric).moe));

/** Per configuration, layer, figure and logged step: mean ± std over the seeds that logged it. */
export function diagnosticCurves(trials: TrialData[]): DiagnosticPoint[] {
  const groups = new Map<string, { config: string; layer: number; figure: string; step: number; v: number[] }>();
  for (const t of trials) {
    const config = configName(t.name);
    for (const m of trainRecords(t)) {
      for (const l of m.moe!) {
        for (const d of DIAGNOSTICS) {
          const key = `${config}\u0000${l.layer}\u0000${d.key}\u0000${m.step}`;
          const g = groups.get(key) ?? { config, layer: l.layer, figure: d.title, step: m.step, v: [] };
          g.v.push(d.of(l));
          groups.set(key, g);
        }
      }
    }
  }
  return [...groups.values()].map(({ v, ...g }) => {
    const s = stat(v);
    const mean = s.mean ?? NaN;
    const sd = s.std ?? 0;
    // Every figure here is at least 0: the band stops there rather than show negative loads.
    return { ...g, mean, lo: Math.max(0, mean - sd), hi: mean + sd, seeds: s.n };
  }).filter((p) => Number.isFinite(p.mean)).sort((a, b) => (a.config < b.config ? -1 : a.config > b.config ? 1 : a.layer - b.layer || a.step - b.step));
}

export function diagnosticsSpec(points: DiagnosticPoint[], labels: ConfigLabel[]): TopLevelSpec {
  const short = new Map(labels.map((l) => [l.config, l.label]));
  const values = points.map((p) => ({ ...p, label: short.get(p.config) ?? p.config }));
  const x = { field: 'step', type: 'quantitative' as const, title: 'optimizer step', scale: { nice: false }, axis: stepAxis };
  const color = { field: 'label', type: 'nominal' as const, title: 'configuration', sort: labels.map((l) => l.label), legend: { labelLimit: 420 } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'MoE load over training', subtitle: ['per MoE layer, over each logging window; mean ± std over seeds'] },
    data: { values },
    facet: {
      row: { field: 'figure', type: 'nominal', title: null, sort: DIAGNOSTICS.map((d) => d.title), header: { labelAngle: 0, labelAlign: 'left', labelFontSize: 11 } },
      column: { field: 'layer', type: 'ordinal', header: { labelExpr: "'MoE layer ' + datum.value", title: null, labelFontSize: 12 } },
    },
    spec: {
      width: 240,
      height: 120,
      layer: [
        { mark: { type: 'area', opacity: 0.2 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '~g' } }, y2: { field: 'hi' }, color } },
        {
          mark: { type: 'line' },
          encoding: {
            x, y: { field: 'mean', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '~g' } }, color,
            tooltip: [{ field: 'config', title: 'configuration' }, { field: 'layer', title: 'MoE layer' }, { field: 'figure' }, { field: 'step', format: 'd' }, { field: 'mean', format: '.3f' }, { field: 'seeds' }],
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

/** Markdown table of the last logged step of each finished trial: per configuration and layer, mean ± std over seeds. */
export function diagnosticsTable(trials: TrialData[]): { rows: string[][]; head: string[] } {
  const head = ['configuration', 'layer', 'LM loss', 'total', ...DIAGNOSTICS.map((d) => d.title)];
  const acc = new Map<string, { config: string; layer: number; lm: number[]; total: number[]; v: number[][] }>();
  const done = trials.filter((t) => t.state === 'done');
  for (const t of done.length ? done : trials) {
    const last = trainRecords(t).reduce<TrainMetric | undefined>((a, m) => (a && a.step >= m.step ? a : m), undefined);
    if (!last) continue;
    for (const l of last.moe!) {
      const key = `${configName(t.name)}\u0000${l.layer}`;
      const g = acc.get(key) ?? { config: configName(t.name), layer: l.layer, lm: [], total: [], v: DIAGNOSTICS.map(() => []) };
      g.lm.push(last.loss);
      g.total.push(last.total ?? NaN);
      DIAGNOSTICS.forEach((d, i) => g.v[i]!.push(d.of(l)));
      acc.set(key, g);
    }
  }
  const rows = [...acc.values()].sort((a, b) => (a.config < b.config ? -1 : a.config > b.config ? 1 : a.layer - b.layer))
    .map((g) => [g.config, String(g.layer), pm(stat(g.lm), 3), pm(stat(g.total), 3), ...g.v.map((v) => pm(stat(v), 3))]);
  return { head, rows };
}

/** The report section: its Markdown lines and its one figure's spec (absent when no run logged diagnostics). */
export function diagnosticsSection(trials: TrialData[], labels: ConfigLabel[]): { md: string[]; spec?: TopLevelSpec } {
  const points = diagnosticCurves(trials);
  if (!points.length) return { md: [] };
  const { head, rows } = diagnosticsTable(trials);
  const md = [
    '## MoE load diagnostics', '',
    'Per MoE layer over each logging window (docs/MOE-DIAGNOSTICS.md): tokens per expert are assignments before capacity drops; dead experts got none over the window. The table is the last logged step of each finished trial, mean ± std over seeds; LM loss is the language-model loss, total adds the weighted auxiliary losses.', '',
    markdownTable(head, rows, head.map((_, i) => i).slice(1)), '',
  ];
  return { md, spec: diagnosticsSpec(points, labels) };
}
