import { moeBiasName } from '../../compiler/graph/moe-outputs.js';
import type { PlanModel } from './model.js';

/** The plan's auxiliary-loss-free balancing biases (one per routing layer that has one): state a resume must restore. */
function routingBiases(model: PlanModel): string[] {
  const names = new Set(model.compiled.plan.buffers.map((b) => b.name));
  return model.compiled.routing.map((r) => moeBiasName(r.layer)).filter((n) => names.has(n));
}

/** Checkpoint tensors: parameters under their GPT-2 names, the flat AdamW moments (none for SGD), the routing biases. */
export async function checkpointTensors(model: PlanModel): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const g = model.compiled.graph;
  for (const [name, data] of await model.readParams()) out.set(name, { shape: g.get(name).shape, data });
  if (model.hasMoments) for (const name of ['adam.m', 'adam.v'] as const) {
    const data = await model.readFlat(name);
    out.set(`optimizer.${name}`, { shape: [data.length], data });
  }
  for (const name of routingBiases(model)) {
    const data = await model.ex.read(name);
    out.set(`state.${name}`, { shape: [data.length], data });
  }
  return out;
}

export function restoreTensors(model: PlanModel, tensors: Map<string, { data: Float32Array }>, where: string): void {
  const { layout } = model.compiled;
  const flat = new Float32Array(layout.total);
  for (const [name, offset] of layout.offsets) {
    const t = tensors.get(name);
    if (!t) throw new Error(`checkpoint ${where} has no tensor '${name}'`);
    flat.set(t.data, offset);
  }
  model.writeParams(flat);
  restoreRoutingBiases(model, tensors, where);
  if (!model.hasMoments) return;
  const m = tensors.get('optimizer.adam.m')?.data;
  const v = tensors.get('optimizer.adam.v')?.data;
  if (!m || !v || m.length !== layout.total || v.length !== layout.total) throw new Error(`checkpoint ${where} has no optimizer state for this plan`);
  model.writeOptimizerState(m, v);
}

/** Writes the checkpoint's routing biases into the plan (they change which experts a token takes, in evaluation too). */
export function restoreRoutingBiases(model: PlanModel, tensors: Map<string, { data: Float32Array }>, where: string): void {
  for (const name of routingBiases(model)) {
    const b = tensors.get(`state.${name}`)?.data;
    const want = model.compiled.graph.get(name).shape[0]!;
    if (!b || b.length !== want) throw new Error(`checkpoint ${where} has no routing bias '${name}' (${want} floats) for this plan`);
    model.ex.write(name, b);
  }
}
