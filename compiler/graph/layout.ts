import { type Graph, numel } from './ir.js';

/**
 * Storage-buffer binding offsets must be multiples of 256 bytes on every WebGPU adapter
 * (minStorageBufferOffsetAlignment is at most 256), so each parameter starts on a 64-float boundary.
 */
export const ALIGN_FLOATS = 64;
export const alignFloats = (n: number) => Math.ceil(n / ALIGN_FLOATS) * ALIGN_FLOATS;

export interface ParamRange {
  offset: number;
  count: number;
  decay: boolean;
}

export interface ParamLayout {
  /** Floats in the flat params (and grads) region, padding included. */
  total: number;
  /** Contiguous ranges AdamW updates: decayed matrices, then undecayed vectors. Frozen tensors come last, outside them. */
  ranges: ParamRange[];
  /** Parameter name → offset (floats) in the region, in layout order. */
  offsets: Map<string, number>;
  /** Real (unpadded) parameter count, trainable or not. */
  count: number;
}

/**
 * Places every 'param' tensor of the graph in one flat region: trainable decayed tensors first,
 * then trainable undecayed, then frozen, each group contiguous so AdamW needs one dispatch per group.
 * Tensors are placed in declaration order inside a group, so a LayerNorm's bias directly follows
 * its weight (the packed gradient kernel relies on it). Gradient views mirror the offsets.
 */
export function layoutParams(g: Graph): ParamLayout {
  const params = [...g.tensors.values()].filter((t) => t.kind === 'param');
  const groups = [
    params.filter((t) => t.trainable !== false && t.decay),
    params.filter((t) => t.trainable !== false && !t.decay),
    params.filter((t) => t.trainable === false),
  ];
  const offsets = new Map<string, number>();
  const ranges: ParamRange[] = [];
  let at = 0;
  let count = 0;
  groups.forEach((group, i) => {
    const start = at;
    for (const t of group) {
      t.region = 'params';
      t.offset = at;
      offsets.set(t.name, at);
      at += alignFloats(numel(t.shape));
      count += numel(t.shape);
    }
    if (i < 2 && at > start) ranges.push({ offset: start, count: at - start, decay: i === 0 });
  });
  for (const t of g.tensors.values()) {
    if (t.kind !== 'grad' || t.region !== 'grads') continue;
    const of = t.name.replace(/^grad\./, '');
    const base = offsets.get(of) ?? offsets.get(of.replace(/\.wb$/, '.weight'));
    if (base === undefined) throw new Error(`layout: gradient '${t.name}' has no parameter`);
    t.offset = base;
  }
  return { total: Math.max(at, ALIGN_FLOATS), ranges, offsets, count };
}
