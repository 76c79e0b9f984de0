// The numbers of the report: one row per trial, and one per configuration with mean ± std over
// its seeds. Only finished trials enter a configuration's statistics; the others are counted and
// named, so a mean never silently hides a failed seed.
import type { TrialData } from './load.js';

export interface Stat {
  mean: number | null;
  /** Sample standard deviation (n - 1); null for fewer than two values. */
  std: number | null;
  n: number;
}

export function stat(xs: number[]): Stat {
  const v = xs.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: null, std: null, n };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const std = n < 2 ? null : Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { mean, std, n };
}

export interface TrialRow {
  id: string;
  name: string;
  /** The configuration: the trial name without its seed. */
  config: string;
  /** Swept path -> value, without the seed. */
  params: Record<string, string>;
  seed: number | null;
  status: string;
  step: number;
  steps: number | null;
  evals: number;
  /** Validation perplexity at the last evaluation. */
  ppl_last: number | null;
  /** Mean validation perplexity over the last `average` evaluations. */
  ppl_avg: number | null;
  average: number;
  /**
   * Classification tasks (the cluster task), means of the last `average` evaluations: test accuracy;
   * dispatch entropy as Chen et al. define it, Σ_m (n_m/n)·H(cluster | expert m); and its mirror
   * Σ_k (n_k/n)·H(expert | cluster k) (metrics key cluster_expert_entropy).
   */
  acc_avg: number | null;
  entropy_avg: number | null;
  spread_avg: number | null;
  params_total: number | null;
  params_active: number | null;
  tokens_per_s: number | null;
  wall_s: number | null;
  /** Seconds the last segment spent compiling kernels (not in wall_s). */
  compile_s: number | null;
  error: string | null;
  /** Every `perplexity` data set of `evaluate`: mean perplexity over the last `average` evaluations. */
  ppl_sets: Record<string, number | null>;
  /** At the last logged training step, mean over the MoE layers (null for dense models). */
  balance_last: number | null;
  z_last: number | null;
  dropped_last: number | null;
}

export interface GroupRow {
  config: string;
  params: Record<string, string>;
  trials: string[];
  seeds: number;
  done: number;
  failed: number;
  /** Neither done nor failed: running, stopped, pending, skipped. */
  unfinished: number;
  ppl_last: Stat;
  ppl_avg: Stat;
  acc_avg: Stat;
  entropy_avg: Stat;
  spread_avg: Stat;
  params_total: number | null;
  params_active: number | null;
  tokens_per_s: Stat;
  wall_s: Stat;
  ppl_sets: Record<string, Stat>;
  balance_last: Stat;
  z_last: Stat;
  dropped_last: Stat;
}

const SEED = 'train.seed';

export function configName(name: string): string {
  const parts = name.split(',').filter((p) => !/^seed=\d+$/.test(p));
  return parts.length ? parts.join(',') : 'base';
}

export function trialRow(t: TrialData): TrialRow {
  const rec = t.record;
  const average = Math.max(1, rec?.config.evaluate.average ?? 1);
  const ppls = t.evals.map((e) => e.valid_ppl);
  const last = ppls.length ? ppls[ppls.length - 1]! : null;
  const tail = ppls.slice(-average);
  const tailOf = (key: string, evals = t.evals) => stat(evals.map((e) => e[key]).filter((v): v is number => typeof v === 'number').slice(-average)).mean;
  // Runs written before cluster_expert_entropy existed stored the mirror quantity under
  // dispatch_entropy: read it as that, and leave the paper's entropy unknown for them.
  const current = t.evals.filter((e) => 'cluster_expert_entropy' in e);
  const older = t.evals.filter((e) => !('cluster_expert_entropy' in e) && 'dispatch_entropy' in e);
  const trains = t.metrics.filter((m) => m.kind === 'train');
  const trainRates = trains.map((m) => m.tokens_per_s);
  const sets = [...new Set(t.evals.flatMap((e) => Object.keys(e).filter((k) => k.endsWith('.ppl')).map((k) => k.slice(0, -4))))];
  const ppl_sets = Object.fromEntries(sets.map((d) => [d, tailOf(`${d}.ppl`)]));
  const lastMoe = [...trains].reverse().find((m) => Array.isArray((m as unknown as Record<string, unknown>).moe_balance)) as unknown as Record<string, number[]> | undefined;
  const layerMean = (k: string) => {
    const v = lastMoe?.[k];
    return Array.isArray(v) && v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  // status.json's rate covers every segment when it records train_s; before that it was the last
  // read-back interval's, and the mean over metrics.jsonl (all segments) says more.
  const rate = t.status && t.status.tokens_per_s > 0 && t.status.train_s !== undefined ? t.status.tokens_per_s : (stat(trainRates).mean ?? (t.status?.tokens_per_s || null));
  const params = { ...(rec?.params ?? {}) };
  delete params[SEED];
  const lastStep = t.metrics.reduce((a, m) => Math.max(a, m.step), 0);
  return {
    id: t.id, name: t.name, config: configName(t.name), params, seed: rec?.seed ?? null, status: t.state,
    step: t.status?.step ?? lastStep, steps: t.status?.steps ?? rec?.config.train.steps ?? null, evals: ppls.length,
    ppl_last: last, ppl_avg: tail.length ? stat(tail).mean : null, average, acc_avg: tailOf('valid_acc'), entropy_avg: tailOf('dispatch_entropy', current), spread_avg: current.length ? tailOf('cluster_expert_entropy', current) : tailOf('dispatch_entropy', older),
    params_total: rec?.params_count.total ?? null, params_active: rec?.params_count.active ?? null,
    tokens_per_s: rate, wall_s: t.status?.wall_s ?? null, compile_s: t.status?.compile_s ?? null, error: t.status?.error ?? null,
    ppl_sets, balance_last: layerMean('moe_balance'), z_last: layerMean('moe_z'), dropped_last: layerMean('moe_dropped'),
  };
}

export function groupRows(rows: TrialRow[]): GroupRow[] {
  const groups = new Map<string, TrialRow[]>();
  for (const r of rows) groups.set(r.config, [...(groups.get(r.config) ?? []), r]);
  return [...groups].map(([config, rs]) => {
    const done = rs.filter((r) => r.status === 'done');
    const num = (f: (r: TrialRow) => number | null) => done.map(f).filter((x): x is number => x !== null);
    return {
      config, params: rs[0]!.params, trials: rs.map((r) => r.id), seeds: rs.length, done: done.length,
      failed: rs.filter((r) => r.status === 'failed').length, unfinished: rs.filter((r) => r.status !== 'done' && r.status !== 'failed').length,
      ppl_last: stat(num((r) => r.ppl_last)), ppl_avg: stat(num((r) => r.ppl_avg)),
      acc_avg: stat(num((r) => r.acc_avg)), entropy_avg: stat(num((r) => r.entropy_avg)), spread_avg: stat(num((r) => r.spread_avg)),
      params_total: rs[0]!.params_total, params_active: rs[0]!.params_active,
      tokens_per_s: stat(num((r) => r.tokens_per_s)), wall_s: stat(num((r) => r.wall_s)),
      ppl_sets: Object.fromEntries(pplSets(rs).map((d) => [d, stat(num((r) => r.ppl_sets[d] ?? null))])),
      balance_last: stat(num((r) => r.balance_last)), z_last: stat(num((r) => r.z_last)), dropped_last: stat(num((r) => r.dropped_last)),
    };
  });
}

/** Swept paths in first-seen order (the seed excluded): the table's parameter columns. */
export function sweptPaths(rows: TrialRow[]): string[] {
  const seen: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.params)) if (!seen.includes(k)) seen.push(k);
  return seen;
}

/** The perplexity data sets the rows were evaluated on, in first-seen order. */
export function pplSets(rows: { ppl_sets: Record<string, unknown> }[]): string[] {
  return [...new Set(rows.flatMap((r) => Object.keys(r.ppl_sets)))];
}

/** Whether any row routes (has the router's balance, z and drop statistics). */
export const routes = (rows: { balance_last: Stat | number | null }[]) => rows.some((r) => (typeof r.balance_last === 'number' ? true : r.balance_last !== null && r.balance_last.n > 0));
