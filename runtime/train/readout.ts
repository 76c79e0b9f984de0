// What the training loop reads back at a logging step, in one submit and one wait: the training
// loss and its parts (language-model loss, weighted balance and z losses), each routing layer's
// last-step statistics and, when the plan keeps them, the load diagnostics of the window since the
// last logging step (summarised on the GPU by the `moe_stats` program, which also restarts it).
import { moeStatsName } from '../../compiler/graph/moe-outputs.js';
import { STAT } from '../../compiler/reference/moe.js';
import type { MoeLayerMetric } from '../store/types.js';
import type { MoeStepStats } from './experts.js';
import type { PlanModel } from './model.js';

export interface TrainLosses {
  /** What the optimiser minimised: the language-model loss plus the weighted auxiliary losses. */
  total: number;
  /** The language-model (task) loss alone; equals total when the plan keeps no parts (the patch model). */
  lm: number;
  /** λ·balance and ζ·z summed over the routing layers, as added into total (0 for a dense model). */
  balance: number;
  z: number;
  /** Whether the plan writes the parts (false: lm is the total). */
  parts: boolean;
}

/** One routing layer's load over a logging window (what metrics.jsonl records), with its assignments per expert. */
export type MoeLayerDiagnostics = MoeLayerMetric & { counts: number[] };

export interface TrainReadout {
  losses: TrainLosses;
  /** Per routing layer, the last micro-batch's statistics (empty arrays for a dense model). */
  last: MoeStepStats;
  /** Per routing layer, the window since the last readout; absent when the plan keeps no diagnostics. */
  moe?: MoeLayerDiagnostics[];
}

/** Reads the loss, its parts and the MoE statistics back with one wait (a GPU sync: only at logging steps). */
export async function readTrainReadout(model: PlanModel): Promise<TrainReadout> {
  const { plan, routing, moeDiagnostics: diag } = model.compiled;
  const has = new Set(plan.buffers.map((b) => b.name));
  const parts = has.has('train_lm') && has.has('train_balance') && has.has('train_z');
  if (diag) model.ex.run(diag.program);
  const names = ['train_loss', ...(parts ? ['train_lm', 'train_balance', 'train_z'] : []), ...routing.map((r) => moeStatsName(r.layer)), ...(diag?.layers.map((d) => d.buffer) ?? [])];
  const read = await model.ex.readMany(names);
  let at = 0;
  const total = read[at++]![0]!;
  let losses: TrainLosses = { total, lm: total, balance: 0, z: 0, parts };
  if (parts) {
    const lm = read[at++]![0]!;
    const balance = read[at++]![0]!;
    const z = read[at++]![0]!;
    losses = { total, lm, balance, z, parts };
  }
  const last: MoeStepStats = { load: [], balance: [], z: [], dropped: [], entropy: [] };
  for (const r of routing) {
    const s = read[at++]!;
    const counts = Array.from(s.subarray(STAT.counts, STAT.counts + r.experts));
    const sum = counts.reduce((a, b) => a + b, 0);
    last.load.push(counts.map((c) => (sum > 0 ? c / sum : 0)));
    last.balance.push(s[STAT.balance]!);
    last.z.push(s[STAT.z]!);
    last.dropped.push(s[STAT.dropped]!);
    last.entropy.push(s[STAT.entropy]!);
  }
  if (!diag) return { losses, last };
  const moe = diag.layers.map((d) => {
    const row = read[at++]!;
    const v = (k: string) => {
      const i = diag.fields.indexOf(k);
      if (i < 0) throw new Error(`the plan's MoE diagnostics have no field '${k}'`);
      return row[i]!;
    };
    const counts = Array.from(row.subarray(diag.countsAt, diag.countsAt + d.experts));
    const sum = counts.reduce((a, b) => a + b, 0);
    // Each token makes `top` assignments to distinct experts (on average, under expert choice), so the window's tokens are sum / top.
    const r = routing.find((x) => x.layer === d.layer);
    const top = r?.expertsPerToken ?? r?.selPerToken ?? 1;
    return {
      layer: d.layer, steps: v('steps'),
      tokens: { min: v('min'), p10: v('p10'), median: v('median'), p90: v('p90'), max: v('max'), mean: v('mean') },
      overload: v('overload'), dead: v('dead'), maxShare: sum > 0 ? (Math.max(...counts) * top) / sum : 0, fairShare: top / d.experts,
      dropped: v('dropped'), entropy: v('entropy'), balance: v('balance'), z: v('z'), counts,
    };
  });
  return { losses, last, moe };
}
