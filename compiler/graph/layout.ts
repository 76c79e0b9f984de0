import { type Graph, numel, type Tensor } from './ir.js';

/**
 * Storage-buffer binding offsets must be multiples of 256 bytes on every WebGPU adapter
 * (minStorageBufferOffsetAlignment is at most 256), so each parameter starts on a 64-float boundary.
 */
export const ALIGN_FLOATS = 64;
export const alignFloats = (n: number) => Math.ceil(n / ALIGN_FLOATS) * ALIGN_FLOATS;

/** The largest parameter region by default: WebGPU's guaranteed maxStorageBufferBindingSize (every adapter binds it whole). */
export const DEFAULT_REGION_BYTES = 128 * 2 ** 20;

export interface LayoutOptions {
  /**
   * Bytes one parameter region (and each of its gradient, moment and f16 mirrors) may take: the
   * adapter's maxStorageBufferBindingSize (and maxBufferSize), since the optimiser binds a region
   * whole. Default DEFAULT_REGION_BYTES.
   */
  maxRegionBytes?: number;
}

export interface ParamRange {
  /** Region index (see ParamLayout.regions) and offset in floats inside that region. */
  region: number;
  offset: number;
  count: number;
  decay: boolean;
}

/**
 * One parameter buffer: floats [start, start + floats) of the flat parameter vector. Region 0 is
 * named 'params' (its mirrors 'grads', 'adam.m', 'adam.v', 'params16'); region k > 0 adds '.k'.
 */
export interface ParamRegion {
  start: number;
  floats: number;
}

export interface ParamLayout {
  /** Floats in the flat params (and grads) vector, padding included: the regions end to end. */
  total: number;
  /** Contiguous ranges AdamW updates: decayed matrices, then undecayed vectors, cut at region ends. Frozen tensors come last, outside them. */
  ranges: ParamRange[];
  /** Parameter name → offset (floats) in the flat vector, in layout order (region start + offset in the region). */
  offsets: Map<string, number>;
  /** Real (unpadded) parameter count, trainable or not. */
  count: number;
  /** The buffers the flat vector is cut into, in order; one unless it exceeds maxRegionBytes. */
  regions: ParamRegion[];
}

/** The buffer name of region `k` of a flat vector ('params', 'grads', 'adam.m', 'adam.v', 'params16'). */
export const regionName = (base: string, k: number) => (k === 0 ? base : `${base}.${k}`);

/** The region of the flat vector that holds float `at`. */
export function regionAt(layout: ParamLayout, at: number): number {
  const k = layout.regions.findIndex((r) => at >= r.start && at < r.start + r.floats);
  if (k < 0) throw new Error(`layout: float ${at} is outside the parameter regions`);
  return k;
}

/**
 * Places every 'param' tensor of the graph in one flat vector: trainable decayed tensors first,
 * then trainable undecayed, then frozen, each group contiguous so AdamW needs one dispatch per group
 * and region. Tensors are placed in declaration order inside a group, so a LayerNorm's bias directly
 * follows its weight (the packed gradient kernel relies on it, so the two never straddle a region
 * end). The vector is cut into regions of at most `maxRegionBytes` between tensors, with no gap:
 * offsets in the flat vector do not depend on the cut, so a checkpoint (parameters by name, moments
 * as flat vectors) written under one adapter's limits loads under another's. A tensor larger than a region gets a region of its own (the
 * limit check then refuses the plan, naming it). Gradient views mirror the offsets.
 */
export function layoutParams(g: Graph, opts: LayoutOptions = {}): ParamLayout {
  const cap = Math.floor((opts.maxRegionBytes ?? DEFAULT_REGION_BYTES) / 4 / ALIGN_FLOATS) * ALIGN_FLOATS;
  if (cap < ALIGN_FLOATS) throw new Error(`layout: a parameter region of ${opts.maxRegionBytes} bytes is below ${4 * ALIGN_FLOATS}`);
  const params = [...g.tensors.values()].filter((t) => t.kind === 'param' && !t.viewOf);
  // Row views that split a parameter over regions (graph/lm-head.ts vocabParts): a cut may fall between them.
  const partsOf = new Map<string, Tensor[]>();
  for (const v of g.tensors.values()) {
    if (v.kind !== 'param' || !v.viewOf) continue;
    partsOf.set(v.viewOf, [...(partsOf.get(v.viewOf) ?? []), v].sort((a, b) => a.viewOffset! - b.viewOffset!));
  }
  const groups = [
    params.filter((t) => t.trainable !== false && t.decay),
    params.filter((t) => t.trainable !== false && !t.decay),
    params.filter((t) => t.trainable === false),
  ];
  const packed = new Set([...g.tensors.values()].filter((t) => t.kind === 'grad' && t.name.endsWith('.wb')).map((t) => t.name.replace(/^grad\./, '').replace(/\.wb$/, '.bias')));
  const offsets = new Map<string, number>();
  const ranges: ParamRange[] = [];
  const regions: ParamRegion[] = [{ start: 0, floats: 0 }];
  const place = new Map<string, { region: number; offset: number }>();
  let at = 0;
  let count = 0;
  groups.forEach((group, gi) => {
    let rangeStart = at;
    const closeRange = () => {
      if (gi < 2 && at > rangeStart) {
        const k = regions.length - 1;
        ranges.push({ region: k, offset: rangeStart - regions[k]!.start, count: at - rangeStart, decay: gi === 0 });
      }
    };
    const cutBefore = (unit: number) => {
      const region = regions[regions.length - 1]!;
      if (at > region.start && at + unit - region.start > cap) {
        closeRange();
        region.floats = at - region.start;
        regions.push({ start: at, floats: 0 });
        rangeStart = at;
      }
    };
    group.forEach((t, i) => {
      const parts = partsOf.get(t.name);
      if (parts) {
        const start = at;
        parts.forEach((v) => {
          if (v.viewOffset !== at - start) throw new Error(`layout: the parts of '${t.name}' do not tile it`);
          cutBefore(numel(v.shape));
          const k = regions.length - 1;
          v.region = regionName('params', k);
          v.offset = at - regions[k]!.start;
          place.set(v.name, { region: k, offset: v.offset });
          if (v.offset % ALIGN_FLOATS !== 0) throw new Error(`layout: part '${v.name}' is not on a ${4 * ALIGN_FLOATS}-byte boundary`);
          at += numel(v.shape);
        });
        if (at - start !== numel(t.shape)) throw new Error(`layout: the parts of '${t.name}' do not tile it`);
        // The whole tensor is never bound; its flat offset is what checkpoints and initialisation use.
        const k0 = place.get(parts[0]!.name)!.region;
        t.region = regionName('params', k0);
        t.offset = start - regions[k0]!.start;
        place.set(t.name, { region: k0, offset: t.offset });
        offsets.set(t.name, start);
        at = start + alignFloats(numel(t.shape));
        count += numel(t.shape);
        return;
      }
      // A LayerNorm's weight and bias are placed as one unit (their gradients are one view).
      const unit = packed.has(group[i + 1]?.name ?? '') ? alignFloats(numel(t.shape)) + alignFloats(numel(group[i + 1]!.shape)) : alignFloats(numel(t.shape));
      const region = regions[regions.length - 1]!;
      if (!packed.has(t.name) && at > region.start && at + unit - region.start > cap) {
        closeRange();
        region.floats = at - region.start;
        regions.push({ start: at, floats: 0 });
        rangeStart = at;
      }
      const k = regions.length - 1;
      t.region = regionName('params', k);
      t.offset = at - regions[k]!.start;
      place.set(t.name, { region: k, offset: t.offset });
      offsets.set(t.name, at);
      at += alignFloats(numel(t.shape));
      count += numel(t.shape);
    });
    closeRange();
  });
  const last = regions[regions.length - 1]!;
  last.floats = Math.max(at - last.start, ALIGN_FLOATS);
  for (const t of g.tensors.values()) {
    if (t.kind !== 'grad' || (t.region !== 'grads' && !t.viewOf)) continue;
    const of = t.name.replace(/^grad\./, '');
    const p = place.get(of) ?? place.get(of.replace(/\.wb$/, '.weight'));
    if (p === undefined) throw new Error(`layout: gradient '${t.name}' has no parameter`);
    t.region = regionName('grads', p.region);
    t.offset = p.offset;
  }
  return { total: last.start + last.floats, ranges, offsets, count, regions };
}
