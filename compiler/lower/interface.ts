// The Plan's interface (PlanInterface in plan/types.ts): what each buffer the host touches is. This
// module is the one place that knows the names the graph builders give those buffers; the runtime
// reads the interface instead. A buffer that is neither an activation nor classified here is a
// compile error, so a new buffer cannot silently escape the runtime's reads (or a checkpoint).
import type { Graph } from '../graph/ir.js';
import { regionName, type ParamLayout } from '../graph/layout.js';
import { type MoeRoutingRecord, moeBiasLoadName, moeBiasName, moeSelName, moeStatsName, moeSummaryName, moeWindowName } from '../graph/moe-outputs.js';
import { STAT } from '../reference/moe.js';
import type { Plan, PlanInterface, PlanRegion, PlanStats } from '../plan/types.js';

/** The per-batch inputs, by the names gpt2.ts and patches.ts declare them. */
const INPUTS = ['tokens', 'targets', 'labels', 'rng', 'x', 'y', 'cluster'] as const satisfies readonly (keyof PlanInterface['inputs'])[];
/**
 * Constants and sums only kernels read (the zero rows, the per-step loss pair, the gradient norm), and
 * the loss's parts (train_lm, train_balance, train_z), which runtime/train/readout.ts reads by name.
 */
const INTERNAL = ['zeros', 'loss', 'grad_norm', 'train_lm', 'train_balance', 'train_z'];

/** The statistics layout of a layer of E experts (STAT in reference/moe.ts): scalars, then E counts, then E mean scores. */
export function moeStatsLayout(experts: number): Pick<PlanStats, 'scalars' | 'perExpert'> {
  return {
    scalars: { balance: STAT.balance, z: STAT.z, dropped: STAT.dropped, entropy: STAT.entropy },
    perExpert: { counts: STAT.counts, score: STAT.counts + experts },
  };
}

/** Builds the interface of a lowered plan and checks that it classifies every buffer that is not an activation. */
export function planInterface(plan: Plan, g: Graph, layout: ParamLayout, routing: MoeRoutingRecord[]): PlanInterface {
  const has = new Set(plan.buffers.map((b) => b.name));
  const present = (n: string) => (has.has(n) ? n : undefined);
  const regions: PlanRegion[] = layout.regions.map((r, k) => {
    const region: PlanRegion = { start: r.start, floats: r.floats, params: regionName('params', k), grads: regionName('grads', k) };
    for (const [field, base] of [['m', 'adam.m'], ['v', 'adam.v'], ['params16', 'params16']] as const) {
      const b = present(regionName(base, k));
      if (b) region[field] = b;
    }
    return region;
  });
  const whole = new Set(regions.flatMap((r) => [r.params, r.grads, r.m, r.v, r.params16]).filter((b) => b !== undefined));
  const views: PlanInterface['views'] = { params: [], grads: [], params16: [], rows: [] };
  for (const b of plan.buffers) {
    if (whole.has(b.name)) continue;
    const t = g.get(b.name);
    const kind = t.kind;
    if (t.viewOf !== undefined) {
      if (kind !== 'activation') views.rows.push(b.name);
    } else if (kind === 'param') views.params.push(b.name);
    else if (kind === 'grad') views.grads.push(b.name);
    else if (kind === 'shadow') views.params16.push(b.name);
  }
  const inputs: PlanInterface['inputs'] = {};
  for (const f of INPUTS) {
    const b = present(f);
    if (b) inputs[f] = b;
  }
  const routerStep = present('adam.router');
  const logits = present('logits');
  const stats: PlanStats[] = routing.map((r) => {
    const sel = r.selPerToken === null ? undefined : present(moeSelName(r.layer));
    return { layer: r.layer, experts: r.experts, buffer: moeStatsName(r.layer), ...moeStatsLayout(r.experts), ...(sel ? { sel } : {}), selPerToken: sel ? r.selPerToken : null };
  });
  const io: PlanInterface = {
    regions, views,
    optimizer: { step: 'adam', ...(routerStep ? { routerStep } : {}) },
    inputs,
    outputs: { loss: 'train_loss', eval: 'eval_sum', ...(logits ? { logits } : {}) },
    stats,
    // Auxiliary-loss-free balancing's bias: state a resume and an evaluation must restore.
    state: routing.flatMap((r) => (present(moeBiasName(r.layer)) ? [{ name: `state.${moeBiasName(r.layer)}`, buffer: moeBiasName(r.layer) }] : [])),
    // The bias's per-step load, and the load diagnostics' window and summary (CompiledTrial.moeDiagnostics).
    internal: [...INTERNAL, ...routing.flatMap((r) => [moeBiasLoadName(r.layer), moeWindowName(r.layer), moeSummaryName(r.layer)])].filter((b) => has.has(b)),
  };
  const named = new Set([...whole, ...Object.values(views).flat(), ...Object.values(io.optimizer), ...Object.values(inputs), ...Object.values(io.outputs), ...stats.flatMap((s) => [s.buffer, s.sel]), ...io.state.map((s) => s.buffer), ...io.internal]);
  const loose = plan.buffers.filter((b) => b.role !== 'activation' && !named.has(b.name));
  if (loose.length) {
    throw new Error(`plan interface: buffer${loose.length > 1 ? 's' : ''} ${loose.map((b) => `'${b.name}' (${b.role})`).join(', ')} of ${plan.name} ${loose.length > 1 ? 'have' : 'has'} no kind; classify ${loose.length > 1 ? 'them' : 'it'} in compiler/lower/interface.ts`);
  }
  return io;
}
