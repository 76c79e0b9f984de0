import type { PlanModel } from './model.js';

/** Checkpoint tensors: parameters under their GPT-2 names, plus the flat AdamW moments (none for SGD). */
export async function checkpointTensors(model: PlanModel): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const g = model.compiled.graph;
  for (const [name, data] of await model.readParams()) out.set(name, { shape: g.get(name).shape, data });
  if (model.hasMoments) for (const name of ['adam.m', 'adam.v'] as const) {
    const data = await model.readFlat(name);
    out.set(`optimizer.${name}`, { shape: [data.length], data });
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
  if (!model.hasMoments) return;
  const m = tensors.get('optimizer.adam.m')?.data;
  const v = tensors.get('optimizer.adam.v')?.data;
  if (!m || !v || m.length !== layout.total || v.length !== layout.total) throw new Error(`checkpoint ${where} has no optimizer state for this plan`);
  model.writeOptimizerState(m, v);
}

