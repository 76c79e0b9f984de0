// The report's tables as Markdown and CSV (RFC 4180 quoting).
import { pplSets, routes, type GroupRow, type Stat, type TrialRow } from './summary.js';

export function human(n: number | null): string {
  if (n === null) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** Perplexities: enough digits to compare trials, not more. */
export function num(x: number | null, digits = 2): string {
  return x === null || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

export function pm(s: Stat, digits = 2): string {
  if (s.mean === null) return '—';
  return s.std === null ? `${num(s.mean, digits)} (n=${s.n})` : `${num(s.mean, digits)} ± ${num(s.std, digits)} (n=${s.n})`;
}

export function duration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '—';
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

const escapeMd = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdownTable(head: string[], rows: string[][], right: number[] = []): string {
  const sep = head.map((_, i) => (right.includes(i) ? '---:' : '---'));
  return [head, sep, ...rows].map((r) => `| ${r.map(escapeMd).join(' | ')} |`).join('\n');
}

const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
export function csv(head: string[], rows: unknown[][]): string {
  return [head, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

const short = (p: string) => p.split('.').at(-1)!;

function seedsCell(g: GroupRow): string {
  const notes = [g.failed ? `${g.failed} failed` : '', g.unfinished ? `${g.unfinished} unfinished` : ''].filter(Boolean);
  return `${g.done}/${g.seeds}${notes.length ? ` (${notes.join(', ')})` : ''}`;
}

/** A classification run (the cluster task) reports accuracy and dispatch entropy where a language model reports perplexity. */
export const classifies = (rows: { acc_avg: Stat | number | null }[]) => rows.some((r) => (typeof r.acc_avg === 'number' ? true : r.acc_avg !== null && r.acc_avg.n > 0));

/** The router columns: balance and z loss and the dropped share at the last logged step, mean over MoE layers. */
const ROUTER_HEAD = ['balance loss (last step)', 'z loss (last step)', 'dropped (last step)'];
const pct = (s: Stat) => (s.mean === null ? '—' : pm({ mean: 100 * s.mean, std: s.std === null ? null : 100 * s.std, n: s.n }, 1).replace(/^([\d.]+)/, '$1%'));

export function groupTableMd(groups: GroupRow[], paths: string[], average: number): string {
  const cls = classifies(groups);
  // The first data set is the "valid ppl" columns; every further one gets its own.
  const more = cls ? [] : pplSets(groups).slice(1);
  const router = routes(groups);
  const head = [
    'configuration', ...paths.map(short), 'seeds done',
    ...(cls ? [`test accuracy (mean of last ${average})`, `dispatch entropy H(cluster | expert) (mean of last ${average})`, `H(expert | cluster) (mean of last ${average})`] : ['valid ppl (last)', `valid ppl (mean of last ${average})`, ...more.map((d) => `${d} ppl (mean of last ${average})`)]),
    ...(router ? ROUTER_HEAD : []), 'total params', 'active params', cls ? 'samples/s' : 'tokens/s', 'wall time',
  ];
  const rows = groups.map((g) => [
    g.config, ...paths.map((p) => g.params[p] ?? ''), seedsCell(g),
    ...(cls ? [pm(g.acc_avg, 3), pm(g.entropy_avg, 3), pm(g.spread_avg, 3)] : [pm(g.ppl_last), pm(g.ppl_avg), ...more.map((d) => pm(g.ppl_sets[d] ?? { mean: null, std: null, n: 0 }))]),
    ...(router ? [pm(g.balance_last, 4), pm(g.z_last, 4), pct(g.dropped_last)] : []),
    human(g.params_total), human(g.params_active), pm(g.tokens_per_s, 0), duration(g.wall_s.mean),
  ]);
  const first = 1 + paths.length;
  return markdownTable(head, rows, head.map((_, i) => i).filter((i) => i > first));
}

export function trialTableMd(rows: TrialRow[]): string {
  const cls = classifies(rows);
  const more = cls ? [] : pplSets(rows).slice(1);
  const router = routes(rows);
  const head = [
    'trial', 'id', 'seed', 'status', 'step',
    ...(cls ? ['test accuracy (mean of last M)', 'dispatch entropy H(cluster | expert) (mean of last M)', 'H(expert | cluster) (mean of last M)', 'samples/s'] : ['valid ppl (last)', 'valid ppl (mean of last M)', ...more.map((d) => `${d} ppl (mean of last M)`), 'tokens/s']),
    ...(router ? ROUTER_HEAD : []), 'wall time', 'compile time',
  ];
  const one = (x: number | null, digits: number) => pm({ mean: x, std: null, n: 1 }, digits).replace(' (n=1)', '');
  return markdownTable(head, rows.map((r) => [
    r.name, r.id, r.seed === null ? '—' : String(r.seed), r.status === 'done' ? 'done' : `**${r.status}**`,
    `${r.step}/${r.steps ?? '?'}`,
    ...(cls ? [`${num(r.acc_avg, 3)} (M=${r.average})`, num(r.entropy_avg, 3), num(r.spread_avg, 3)] : [num(r.ppl_last), `${num(r.ppl_avg)} (M=${r.average})`, ...more.map((d) => num(r.ppl_sets[d] ?? null))]), num(r.tokens_per_s, 0),
    ...(router ? [one(r.balance_last, 4), one(r.z_last, 4), r.dropped_last === null ? '—' : `${(100 * r.dropped_last).toFixed(1)}%`] : []),
    duration(r.wall_s), duration(r.compile_s),
  ]), head.map((_, i) => i).filter((i) => i >= 4));
}

export function groupCsv(groups: GroupRow[], paths: string[]): string {
  const sets = pplSets(groups);
  const extra = ['balance_last', 'z_last', 'dropped_last'] as const;
  const head = ['configuration', ...paths, 'seeds', 'done', 'failed', 'unfinished', 'ppl_last_mean', 'ppl_last_std', 'ppl_avg_mean', 'ppl_avg_std', 'acc_avg_mean', 'acc_avg_std', 'entropy_avg_mean', 'entropy_avg_std', 'cluster_expert_entropy_avg_mean', 'cluster_expert_entropy_avg_std', 'params_total', 'params_active', 'tokens_per_s_mean', 'tokens_per_s_std', 'wall_s_mean',
    ...sets.flatMap((d) => [`ppl_avg_mean[${d}]`, `ppl_avg_std[${d}]`, `ppl_avg_n[${d}]`]), ...extra.flatMap((k) => [`${k}_mean`, `${k}_std`, `${k}_n`])];
  return csv(head, groups.map((g) => [
    g.config, ...paths.map((p) => g.params[p] ?? ''), g.seeds, g.done, g.failed, g.unfinished,
    g.ppl_last.mean, g.ppl_last.std, g.ppl_avg.mean, g.ppl_avg.std, g.acc_avg.mean, g.acc_avg.std, g.entropy_avg.mean, g.entropy_avg.std, g.spread_avg.mean, g.spread_avg.std, g.params_total, g.params_active, g.tokens_per_s.mean, g.tokens_per_s.std, g.wall_s.mean,
    ...sets.flatMap((d) => { const s = g.ppl_sets[d]; return [s?.mean ?? null, s?.std ?? null, s?.n ?? 0]; }), ...extra.flatMap((k) => [g[k].mean, g[k].std, g[k].n]),
  ]));
}

export function trialCsv(rows: TrialRow[], paths: string[]): string {
  const sets = pplSets(rows);
  const head = ['id', 'trial', 'configuration', ...paths, 'seed', 'status', 'step', 'steps', 'evals', 'ppl_last', 'ppl_avg', 'average', 'acc_avg', 'entropy_avg', 'cluster_expert_entropy_avg', 'params_total', 'params_active', 'tokens_per_s', 'wall_s', 'error',
    ...sets.map((d) => `ppl_avg[${d}]`), 'balance_last', 'z_last', 'dropped_last', 'compile_s'];
  return csv(head, rows.map((r) => [
    r.id, r.name, r.config, ...paths.map((p) => r.params[p] ?? ''), r.seed, r.status, r.step, r.steps, r.evals, r.ppl_last, r.ppl_avg, r.average, r.acc_avg, r.entropy_avg, r.spread_avg,
    r.params_total, r.params_active, r.tokens_per_s, r.wall_s, r.error, ...sets.map((d) => r.ppl_sets[d] ?? null), r.balance_last, r.z_last, r.dropped_last, r.compile_s,
  ]));
}
