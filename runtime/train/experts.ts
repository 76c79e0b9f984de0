import type { PlanStats } from '../../compiler/plan/types.js';
import { assignmentOf, NO_SLOT } from '../../compiler/routing/slots.js';
import { sequentialBatches, type PreparedText } from '../data/index.js';
import type { GpuModel, PlanModel } from './model.js';

/** The MoE layers that write statistics, in order, as the plan's interface lists them. */
export function moeLayers(model: PlanModel): number[] {
  return model.io.stats.map((r) => r.layer);
}

/** The plan's record of layer l's statistics output. */
export function statsOf(model: PlanModel, l: number): PlanStats {
  const r = model.io.stats.find((x) => x.layer === l);
  if (!r) throw new Error(`layer ${l} writes no MoE statistics in this plan`);
  return r;
}

export interface MoeStepStats {
  /** Per MoE layer: fraction of routed assignments per expert. */
  load: number[][];
  balance: number[];
  z: number[];
  dropped: number[];
  entropy: number[];
}

/** Reads the statistics the last forward pass left in each MoE layer's output (one read per layer). */
export async function readMoeStats(model: PlanModel, layers = moeLayers(model)): Promise<MoeStepStats> {
  const out: MoeStepStats = { load: [], balance: [], z: [], dropped: [], entropy: [] };
  for (const l of layers) {
    const { buffer, experts: E, scalars, perExpert } = statsOf(model, l);
    const s = await model.ex.read(buffer);
    const counts = Array.from(s.subarray(perExpert.counts, perExpert.counts + E));
    const total = counts.reduce((a, b) => a + b, 0);
    out.load.push(counts.map((c) => (total > 0 ? c / total : 0)));
    out.balance.push(s[scalars.balance]!);
    out.z.push(s[scalars.z]!);
    out.dropped.push(s[scalars.dropped]!);
    out.entropy.push(s[scalars.entropy]!);
  }
  return out;
}

/**
 * Expert assignment by label: the validation windows are regrouped into batches that hold one
 * label value each (a batch's last places repeat its windows, which keeps it pure), every batch runs
 * the forward pass, and each MoE layer's routed counts are added to that value's row. At most
 * `maxBatches` batches per value. Returns per layer: value → assignments per expert.
 */
export interface TopTokens {
  /** Per MoE layer that routes (a global-scope model has one), per expert: its most frequent input tokens. */
  layers: { layer: number; experts: { expert: number; assignments: number; tokens: { token: number; count: number }[] }[] }[];
}

/** Counts, per routing layer and expert, which input tokens it was given (token routing only). */
export class TokenTally {
  private readonly counts = new Map<number, Map<number, number>[]>();
  constructor(private readonly model: GpuModel) {}

  /** Adds the decisions the last forward pass left in each routing layer's selections. */
  async add(tokens: Uint32Array, real: number): Promise<void> {
    for (const { layer: l, experts: E, sel: selBuffer, selPerToken: K } of this.model.io.stats) {
      if (selBuffer === undefined || K === null) continue; // no selections output (Soft MoE)
      const sel = new Uint32Array(await this.model.ex.readBytes(selBuffer));
      const perExpert = this.counts.get(l) ?? Array.from({ length: E }, () => new Map<number, number>());
      for (let n = 0; n < real * this.model.compiled.spec.context; n++) {
        for (let k = 0; k < K; k++) {
          const e = sel[assignmentOf({ top: K }, n, k)]!;
          if (e === NO_SLOT) continue; // expert choice: this expert did not choose the token
          const c = (perExpert[e] ??= new Map<number, number>());
          c.set(tokens[n]!, (c.get(tokens[n]!) ?? 0) + 1);
        }
      }
      this.counts.set(l, perExpert);
    }
  }

  top(n: number): TopTokens {
    return {
      layers: [...this.counts].sort((a, b) => a[0] - b[0]).map(([layer, perExpert]) => ({
        layer,
        experts: Array.from(perExpert, (c, expert) => ({
          expert,
          assignments: [...(c?.values() ?? [])].reduce((a, b) => a + b, 0),
          tokens: [...(c ?? new Map<number, number>())].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, n).map(([token, count]) => ({ token, count })),
        })),
      })),
    };
  }
}

export async function expertAssignment(model: GpuModel, data: PreparedText, split: 'train' | 'valid', label: string, maxBatches: number, tally?: TokenTally, routeLabel: string | null = null): Promise<{ layer: number; counts: Record<string, number[]> }[]> {
  const layers = moeLayers(model);
  const space = data.labels.find((l) => l.name === label);
  // A label router needs its own label on every window; data without it cannot be routed.
  if (!space || !layers.length || (routeLabel && !data.labels.some((l) => l.name === routeLabel))) return [];
  const { batch: B, context: T } = model.spec;
  const windows = new Map<number, { inputs: Uint32Array; targets: Uint32Array; route: number }[]>();
  for (const b of sequentialBatches(data, split === 'valid' ? data.valid : data.train, T, B)) {
    for (let w = 0; w < b.windows; w++) {
      const v = b.labels[label]![w]!;
      const list = windows.get(v) ?? [];
      if (list.length < maxBatches * B) list.push({ inputs: b.inputs.slice(w * T, (w + 1) * T), targets: b.targets.slice(w * T, (w + 1) * T), route: routeLabel ? b.labels[routeLabel]![w]! : 0 });
      windows.set(v, list);
    }
  }
  const result = layers.map((layer) => ({ layer, counts: {} as Record<string, number[]> }));
  for (const [v, list] of [...windows].sort((a, b) => a[0] - b[0])) {
    const name = space.values[v] ?? String(v);
    for (let start = 0; start < list.length; start += B) {
      const tokens = new Uint32Array(B * T);
      const targets = new Uint32Array(B * T);
      const labels = new Uint32Array(B);
      for (let w = 0; w < B; w++) {
        const src = list[start + w] ?? list[start + (w % Math.min(B, list.length - start))]!;
        tokens.set(src.inputs, w * T);
        targets.set(src.targets, w * T);
        labels[w] = src.route;
      }
      await model.evalLoss([{ tokens, targets, labels }]);
      await tally?.add(tokens, Math.min(B, list.length - start));
      const stats = await readMoeStats(model, layers);
      layers.forEach((_, i) => {
        const s = stats.load[i]!;
        const row = (result[i]!.counts[name] ??= new Array<number>(s.length).fill(0));
        // Weighted by the windows that are real (not repeats), in window units.
        const real = Math.min(B, list.length - start);
        s.forEach((f, e) => { row[e]! += f * real; });
      });
    }
  }
  return result;
}
