// The report's tables as Markdown and CSV (RFC 4180 quoting).
import type { GroupRow, Stat, TrialRow } from './summary.js';

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
  return s.std === null ? `${num(s.mean, digits)} (n=${s.n})` : `${num(s.mean, digits)} ± ${num(s.std, digits)}`;
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

export function groupTableMd(groups: GroupRow[], paths: string[], average: number): string {
  const cls = classifies(groups);
  const head = ['configuration', ...paths.map(short), 'seeds done', ...(cls ? [`test accuracy (mean of last ${average})`, `dispatch entropy H(cluster | expert) (mean of last ${average})`, `H(expert | cluster) (mean of last ${average})`] : ['valid ppl (last)', `valid ppl (mean of last ${average})`]), 'total params', 'active params', cls ? 'samples/s' : 'tokens/s', 'wall time'];
  const rows = groups.map((g) => [
    g.config, ...paths.map((p) => g.params[p] ?? ''), seedsCell(g), ...(cls ? [pm(g.acc_avg, 3), pm(g.entropy_avg, 3), pm(g.spread_avg, 3)] : [pm(g.ppl_last), pm(g.ppl_avg)]),
    human(g.params_total), human(g.params_active), pm(g.tokens_per_s, 0), duration(g.wall_s.mean),
  ]);
  const first = 1 + paths.length;
  return markdownTable(head, rows, [first + 1, first + 2, first + 3, first + 4, first + 5, first + 6, ...(cls ? [first + 7] : [])]);
}

export function trialTableMd(rows: TrialRow[]): string {
  const cls = classifies(rows);
  const head = ['trial', 'id', 'seed', 'status', 'step', ...(cls ? ['test accuracy (mean of last M)', 'dispatch entropy H(cluster | expert) (mean of last M)', 'H(expert | cluster) (mean of last M)', 'samples/s'] : ['valid ppl (last)', 'valid ppl (mean of last M)', 'tokens/s']), 'wall time'];
  return markdownTable(head, rows.map((r) => [
    r.name, r.id, r.seed === null ? '—' : String(r.seed), r.status === 'done' ? 'done' : `**${r.status}**`,
    `${r.step}/${r.steps ?? '?'}`, ...(cls ? [`${num(r.acc_avg, 3)} (M=${r.average})`, num(r.entropy_avg, 3), num(r.spread_avg, 3)] : [num(r.ppl_last), `${num(r.ppl_avg)} (M=${r.average})`]), num(r.tokens_per_s, 0), duration(r.wall_s),
  ]), cls ? [4, 5, 6, 7, 8, 9] : [4, 5, 6, 7, 8]);
}

export function groupCsv(groups: GroupRow[], paths: string[]): string {
  const head = ['configuration', ...paths, 'seeds', 'done', 'failed', 'unfinished', 'ppl_last_mean', 'ppl_last_std', 'ppl_avg_mean', 'ppl_avg_std', 'acc_avg_mean', 'acc_avg_std', 'entropy_avg_mean', 'entropy_avg_std', 'cluster_expert_entropy_avg_mean', 'cluster_expert_entropy_avg_std', 'params_total', 'params_active', 'tokens_per_s_mean', 'tokens_per_s_std', 'wall_s_mean'];
  return csv(head, groups.map((g) => [
    g.config, ...paths.map((p) => g.params[p] ?? ''), g.seeds, g.done, g.failed, g.unfinished,
    g.ppl_last.mean, g.ppl_last.std, g.ppl_avg.mean, g.ppl_avg.std, g.acc_avg.mean, g.acc_avg.std, g.entropy_avg.mean, g.entropy_avg.std, g.spread_avg.mean, g.spread_avg.std, g.params_total, g.params_active, g.tokens_per_s.mean, g.tokens_per_s.std, g.wall_s.mean,
  ]));
}

export function trialCsv(rows: TrialRow[], paths: string[]): string {
  const head = ['id', 'trial', 'configuration', ...paths, 'seed', 'status', 'step', 'steps', 'evals', 'ppl_last', 'ppl_avg', 'average', 'acc_avg', 'entropy_avg', 'cluster_expert_entropy_avg', 'params_total', 'params_active', 'tokens_per_s', 'wall_s', 'error'];
  return csv(head, rows.map((r) => [
    r.id, r.name, r.config, ...paths.map((p) => r.params[p] ?? ''), r.seed, r.status, r.step, r.steps, r.evals, r.ppl_last, r.ppl_avg, r.average, r.acc_avg, r.entropy_avg, r.spread_avg,
    r.params_total, r.params_active, r.tokens_per_s, r.wall_s, r.error,
  ]));
}
