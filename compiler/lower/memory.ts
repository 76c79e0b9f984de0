import type { KernelBinding } from '../plan/types.js';

export interface Lifetime {
  name: string;
  bytes: number;
  /** Index of the first and last dispatch that binds it. */
  first: number;
  last: number;
}

export interface MemoryPlan {
  /** Tensor name → region name; each region is one allocation, its tensors share offset 0 in turn. */
  regionOf: Map<string, string>;
  regions: { name: string; bytes: number; tensors: string[] }[];
  /** Bytes of all planned tensors if each had its own buffer, and after reuse. */
  naiveBytes: number;
  plannedBytes: number;
}

/**
 * Liveness of each planned tensor over one ordered dispatch list. The first binding of a tensor
 * must write it: a planned tensor read before any write would read another tensor's leftovers.
 */
export function lifetimes(dispatches: { label: string; buffers: string[]; bindings: KernelBinding[] }[], sizes: Map<string, number>): Lifetime[] {
  const seen = new Map<string, Lifetime>();
  dispatches.forEach((d, i) => {
    d.buffers.forEach((name, j) => {
      const bytes = sizes.get(name);
      if (bytes === undefined) return;
      const lt = seen.get(name);
      if (lt) lt.last = i;
      else {
        if (d.bindings[j]!.type !== 'storage') throw new Error(`memory plan: '${name}' is read by '${d.label}' before anything writes it`);
        seen.set(name, { name, bytes, first: i, last: i });
      }
    });
  });
  return [...seen.values()];
}

/**
 * Greedy interval allocation: tensors in order of first use take the free region (one whose last
 * tensor is dead) that fits best, growing it if none fits. Tensors sharing a region never live at
 * the same time, so no dispatch binds two of them: WebGPU's rule that a written binding may not
 * alias another binding of the same dispatch holds by construction.
 */
export function planMemory(lts: Lifetime[]): MemoryPlan {
  const regions: { name: string; bytes: number; tensors: string[]; freeAfter: number }[] = [];
  const regionOf = new Map<string, string>();
  const sorted = [...lts].sort((a, b) => a.first - b.first || b.bytes - a.bytes);
  for (const t of sorted) {
    const free = regions.filter((r) => r.freeAfter < t.first);
    const fits = free.filter((r) => r.bytes >= t.bytes).sort((a, b) => a.bytes - b.bytes);
    const grow = free.sort((a, b) => b.bytes - a.bytes);
    let r = fits[0] ?? grow[0];
    if (!r) {
      r = { name: `act${regions.length}`, bytes: 0, tensors: [], freeAfter: -1 };
      regions.push(r);
    }
    r.bytes = Math.max(r.bytes, t.bytes);
    r.tensors.push(t.name);
    r.freeAfter = t.last;
    regionOf.set(t.name, r.name);
  }
  return {
    regionOf,
    regions: regions.map(({ name, bytes, tensors }) => ({ name, bytes, tensors })),
    naiveBytes: lts.reduce((a, t) => a + t.bytes, 0),
    plannedBytes: regions.reduce((a, r) => a + r.bytes, 0),
  };
}
