import { createHash } from 'node:crypto';
import type { Graph } from '../../compiler/graph/ir.js';
import { numel } from '../../compiler/graph/ir.js';
import type { ParamLayout } from '../../compiler/graph/layout.js';
import { rng } from '../../compiler/reference/random.js';

/** A 32-bit seed for one tensor, from the trial seed and the tensor's name. */
function tensorSeed(seed: number, name: string): number {
  return createHash('sha256').update(`${seed}:${name}`).digest().readUInt32LE(0);
}

/**
 * GPT-2 initialisation on the host, into the flat parameter layout: normal(0, std) matrices (the
 * graph already scales residual projections by 1/sqrt(2·layers)), zero biases, unit LayerNorm
 * gains. Each tensor draws from its own stream seeded by (seed, name), so a tensor's initial
 * values do not depend on which other tensors exist: two trials that differ only in their MoE
 * layers start from the same embeddings and attention weights.
 */
export function initParams(g: Graph, layout: ParamLayout, seed: number): Float32Array {
  const out = new Float32Array(layout.total);
  for (const [name, offset] of layout.offsets) {
    const t = g.get(name);
    const n = numel(t.shape);
    const init = t.init ?? { kind: 'zeros' };
    if (init.kind === 'ones') out.fill(1, offset, offset + n);
    const r = rng(tensorSeed(seed, name));
    if (init.kind === 'uniform') for (let i = 0; i < n; i++) out[offset + i] = (2 * r() - 1) * init.bound;
    if (init.kind !== 'normal') continue;
    // Box-Muller, two values per pair of uniforms; 1 - r() keeps the log finite.
    for (let i = 0; i < n; i += 2) {
      const rad = Math.sqrt(-2 * Math.log(1 - r())) * init.std;
      const th = 2 * Math.PI * r();
      out[offset + i] = rad * Math.cos(th);
      if (i + 1 < n) out[offset + i + 1] = rad * Math.sin(th);
    }
  }
  return out;
}

/** Splits a flat region (params or grads) into named tensors, views into `flat`. */
export function splitParams(g: Graph, layout: ParamLayout, flat: Float32Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, offset] of layout.offsets) out.set(name, flat.subarray(offset, offset + numel(g.get(name).shape)));
  return out;
}
