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
export function specialisationTable(rows: LayerSpecialisation[], label: string, perSeed: Map<number, number[]> = new Map(), perSeedEntropy: Map<number, number[]> = new Map(), pooled = 1): string[] {
  const cell = (v: number[] | undefined) => {
    if (!v?.length) return '—';
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : null;
    return sd === null ? `${m.toFixed(4)} (n=1)` : `${m.toFixed(4)} ± ${sd.toFixed(4)} (n=${v.length})`;
  };
  // The pooled columns are one number from the counts of every seed together (n = seeds pooled);
  // the per-seed columns carry the spread.
  const of = pooled === 1 ? 'one seed' : `pooled over ${pooled} seeds`;
  return [
    `| MoE layer | mean JS divergence between ${label}s (bits, ${of}) | most different pair (${of}) | entropy of expert use per ${label} (bits, of max; ${of}) | mean JS divergence per seed: mean ± std (n) | entropy per seed: mean ± std (n) |`,
    '| ---: | ---: | --- | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.layer} | ${r.meanJsd.toFixed(4)} | ${r.maxJsd.pair.join(' / ')} (${r.maxJsd.value.toFixed(4)}) | ${r.meanEntropy.toFixed(3)} of ${r.maxEntropy.toFixed(3)} | ${cell(perSeed.get(r.layer))} | ${cell(perSeedEntropy.get(r.layer))} |`),
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

/** Each trial's own mean entropy of expert use per label value, per layer, from its last record on (data, label). */
export function perSeedEntropy(trials: Parameters<typeof perSeedJsd>[0], data: string, label: string): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const t of trials) {
    const last = t.experts.filter((r) => r.data === data && r.label === label).at(-1);
    for (const l of last?.layers ?? []) out.set(l.layer, [...(out.get(l.layer) ?? []), specialisation(l.layer, l.counts).meanEntropy]);
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
    const withFile = trials.filter((x) => existsSync(path.join(x.dir, 'top-tokens.json')));
    const t = withFile[0];
    if (!t) continue;
    const f = JSON.parse(readFileSync(path.join(t.dir, 'top-tokens.json'), 'utf8')) as TopTokensFile;
    // Experts have no identity across seeds (expert 2 of one seed is not expert 2 of another), so
    // the tokens are one seed's; the spread over seeds is given where it means something: how
    // unequal the shares are (the largest expert's share) per layer.
    const largest = new Map<number, number[]>();
    for (const x of withFile) {
      const g = JSON.parse(readFileSync(path.join(x.dir, 'top-tokens.json'), 'utf8')) as TopTokensFile;
      for (const l of g.layers) {
        const es = l.experts.filter(Boolean);
        const total = es.reduce((a, e) => a + e.assignments, 0);
        if (total > 0) largest.set(l.layer, [...(largest.get(l.layer) ?? []), Math.max(...es.map((e) => e.assignments)) / total]);
      }
    }
    md.push(`### ${config}: ${f.data}, step ${f.step}`, '');
    md.push(`Tokens from one seed (${t.name}${withFile.length > 1 ? `, of ${withFile.length} seeds with this table` : ', n=1'}).`, '');
    md.push('| MoE layer | expert | share of assignments | most frequent input tokens (count) |', '| ---: | ---: | ---: | --- |');
    for (const l of f.layers) {
      l.experts = l.experts.filter(Boolean); // files from before every expert was listed had holes
      const total = l.experts.reduce((a, e) => a + e.assignments, 0);
      for (const e of l.experts) {
        md.push(`| ${l.layer} | ${e.expert} | ${total ? ((100 * e.assignments) / total).toFixed(1) : '0.0'}% | ${e.tokens.map((x) => `\`${shown(x.text)}\` (${x.count})`).join(', ')} |`);
      }
    }
    md.push('');
    md.push('| MoE layer | largest expert\'s share over seeds: mean ± std (n) |', '| ---: | ---: |');
    for (const [layer, v] of [...largest].sort((a, b) => a[0] - b[0])) md.push(`| ${layer} | ${spread(v.map((x) => 100 * x), 1, '%')} |`);
    md.push('');
  }
  return md.length ? ['## Tokens each expert takes most', '', ...md] : [];
}

/** `m ± sd (n=k)`, or `m (n=1)`. */
function spread(v: number[], digits: number, unit = ''): string {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  if (v.length < 2) return `${m.toFixed(digits)}${unit} (n=1)`;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
  return `${m.toFixed(digits)}${unit} ± ${sd.toFixed(digits)}${unit} (n=${v.length})`;
}
