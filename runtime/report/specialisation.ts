import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
// How much the experts specialise by label: the Jensen-Shannon divergence between the labels'
// expert-use distributions (0: every label uses the experts alike; 1 bit: disjoint) and the
// entropy of each label's expert use (log2 E: uniform over experts; 0: one expert).

const log2 = (x: number) => Math.log(x) / Math.LN2;

function normalise(v: number[]): number[] {
  const s = v.reduce((a, b) => a + b, 0);
  return v.map((x) => (s > 0 ? x / s : 0));
}

/** Shannon entropy in bits. */
export function entropyBits(p: number[]): number {
  return p.reduce((a, x) => a - (x > 0 ? x * log2(x) : 0), 0);
}

/** Jensen-Shannon divergence in bits (0..1) of two distributions. */
export function jsdBits(p: number[], q: number[]): number {
  const m = p.map((x, i) => (x + q[i]!) / 2);
  const kl = (a: number[]) => a.reduce((s, x, i) => s + (x > 0 ? x * log2(x / m[i]!) : 0), 0);
  return (kl(p) + kl(q)) / 2;
}

export interface LayerSpecialisation {
  layer: number;
  /** Mean over label pairs. */
  meanJsd: number;
  maxJsd: { value: number; pair: [string, string] };
  /** Mean over labels of the entropy of their expert use, and its maximum log2(E). */
  meanEntropy: number;
  maxEntropy: number;
}

/** Specialisation of one MoE layer from its counts per label value (value → counts per expert). */
export function specialisation(layer: number, counts: Record<string, number[]>): LayerSpecialisation {
  const labels = Object.keys(counts).sort();
  const dist = labels.map((l) => normalise(counts[l]!));
  let sum = 0;
  let pairs = 0;
  let max = { value: 0, pair: [labels[0] ?? '', labels[0] ?? ''] as [string, string] };
  for (let i = 0; i < labels.length; i++) {
    for (let j = i + 1; j < labels.length; j++) {
      const d = jsdBits(dist[i]!, dist[j]!);
      sum += d;
      pairs++;
      if (d > max.value) max = { value: d, pair: [labels[i]!, labels[j]!] };
    }
  }
  const E = dist[0]?.length ?? 1;
  return {
    layer,
    meanJsd: pairs ? sum / pairs : 0,
    maxJsd: max,
    meanEntropy: dist.length ? dist.reduce((a, p) => a + entropyBits(p), 0) / dist.length : 0,
    maxEntropy: log2(Math.max(1, E)),
  };
}

/**
 * A markdown table of the layers' specialisation, from the counts summed over seeds (experts matched
 * across seeds first: charts.ts `assignment`), and beside it the mean JS divergence computed per
 * seed (`perSeed`: layer → one value per seed), which needs no matching at all.
 */
export function specialisationTable(rows: LayerSpecialisation[], label: string, perSeed: Map<number, number[]> = new Map()): string[] {
  const cell = (v: number[] | undefined) => {
    if (!v?.length) return '—';
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : null;
    return sd === null ? `${m.toFixed(4)} (n=1)` : `${m.toFixed(4)} ± ${sd.toFixed(4)} (n=${v.length})`;
  };
  return [
    `| MoE layer | mean JS divergence between ${label}s (bits) | most different pair | entropy of expert use per ${label} (bits, of max) | mean JS divergence per seed, then averaged |`,
    '| ---: | ---: | --- | ---: | ---: |',
    ...rows.map((r) => `| ${r.layer} | ${r.meanJsd.toFixed(4)} | ${r.maxJsd.pair.join(' / ')} (${r.maxJsd.value.toFixed(4)}) | ${r.meanEntropy.toFixed(3)} of ${r.maxEntropy.toFixed(3)} | ${cell(perSeed.get(r.layer))} |`),
    '',
  ];
}

/** Each trial's own mean JS divergence per layer, from its last record on (data, label). */
export function perSeedJsd(trials: { experts: { data: string; label: string; layers: { layer: number; counts: Record<string, number[]> }[] }[] }[], data: string, label: string): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const t of trials) {
    const last = t.experts.filter((r) => r.data === data && r.label === label).at(-1);
    for (const l of last?.layers ?? []) out.set(l.layer, [...(out.get(l.layer) ?? []), specialisation(l.layer, l.counts).meanJsd]);
  }
  return out;
}

interface TopTokensFile {
  step: number;
  data: string;
  layers: { layer: number; experts: { expert: number; assignments: number; tokens: { token: number; count: number; text: string }[] }[] }[];
}

const shown = (t: string) => JSON.stringify(t).slice(1, -1).replace(/\|/g, '\\|').replace(/`/g, "'");

/** "Tokens each expert takes most": per configuration, from its first trial that wrote top-tokens.json. */
export function topTokensSection(byConfig: Map<string, { dir: string; name: string }[]>): string[] {
  const md: string[] = [];
  for (const [config, trials] of byConfig) {
    const t = trials.find((x) => existsSync(path.join(x.dir, 'top-tokens.json')));
    if (!t) continue;
    const f = JSON.parse(readFileSync(path.join(t.dir, 'top-tokens.json'), 'utf8')) as TopTokensFile;
    md.push(`### ${config} (${t.name}): ${f.data}, step ${f.step}`, '');
    md.push('| MoE layer | expert | share of assignments | most frequent input tokens (count) |', '| ---: | ---: | ---: | --- |');
    for (const l of f.layers) {
      l.experts = l.experts.filter(Boolean); // files from before every expert was listed had holes
      const total = l.experts.reduce((a, e) => a + e.assignments, 0);
      for (const e of l.experts) {
        md.push(`| ${l.layer} | ${e.expert} | ${total ? ((100 * e.assignments) / total).toFixed(1) : '0.0'}% | ${e.tokens.map((x) => `\`${shown(x.text)}\` (${x.count})`).join(', ')} |`);
      }
    }
    md.push('');
  }
  return md.length ? ['## Tokens each expert takes most', '', ...md] : [];
}
