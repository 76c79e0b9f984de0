import type { FlatVector, PlanModel } from './model.js';

/** The checkpoint names of the flat AdamW moments (the names saved checkpoints hold). */
const MOMENTS: [FlatVector, string][] = [['m', 'optimizer.adam.m'], ['v', 'optimizer.adam.v']];

/**
 * Checkpoint tensors: parameters under their GPT-2 names, the flat AdamW moments (none for SGD),
 * and the plan's further state (PlanInterface.state) under its names.
 */
export async function checkpointTensors(model: PlanModel): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const g = model.compiled.graph;
  for (const [name, data] of await model.readParams()) out.set(name, { shape: g.get(name).shape, data });
  if (model.hasMoments) for (const [vector, name] of MOMENTS) {
    const data = await model.readFlat(vector);
    out.set(name, { shape: [data.length], data });
  }
  for (const { name, buffer } of model.io.state) {
    const data = await model.ex.read(buffer);
    out.set(name, { shape: [data.length], data });
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
  restoreState(model, tensors, where);
  if (!model.hasMoments) return;
  const [m, v] = MOMENTS.map(([, name]) => tensors.get(name)?.data);
  if (!m || !v || m.length !== layout.total || v.length !== layout.total) throw new Error(`checkpoint ${where} has no optimizer state for this plan`);
  model.writeOptimizerState(m, v);
}

/**
 * Writes the plan's further state (PlanInterface.state: the routing biases of auxiliary-loss-free
 * balancing) from the checkpoint; it changes which experts a token takes, in evaluation too.
 */
export function restoreState(model: PlanModel, tensors: Map<string, { data: Float32Array }>, where: string): void {
  for (const { name, buffer } of model.io.state) {
    const t = tensors.get(name);
    const bytes = model.compiled.plan.buffers.find((b) => b.name === buffer)!.bytes;
    if (!t || 4 * t.data.length !== bytes) throw new Error(`checkpoint ${where} has no tensor '${name}' of ${bytes / 4} floats for this plan`);
    model.ex.write(buffer, t.data);
  }
}
