import { defaultTiling, subgroupTiling, type MatmulShape, type MatmulTiling } from '../kernels/matmul.js';
import type { RowKernel } from '../kernels/wgsl.js';
import type { KernelRef } from '../graph/ir.js';
import { formFor, type AdapterTraits, type LoweringOptions, type LoweringTarget, subgroupFormsSuit } from './target.js';

// The lowering's kernel choice: the op kinds' forms are in compiler/lower/kernel-table.ts, the
// conditions for each form in compiler/lower/target.ts; these are the names callers import.
export { loweringNames, type LoweringOptions, type LoweringTarget } from './target.js';

/**
 * Matmul tiling. Measured on lavapipe (2 cores, AVX2; runtime/bench/matmul-compare.ts, the table in
 * docs/PERFORMANCE.md): the subgroup tiling (16×4 outputs per invocation, A shared by
 * subgroupBroadcast) ran at 1.5-3.7× the 8×8 tile at every matmul of the quickstart and 'small'
 * models and at 512³ / 1024³ (quickstart: 3.0-7.5 -> 7.8-13.1 GFLOP/s; 512³: 7.8 -> 16.8), forward,
 * dx (transB) and dW (transA) alike, so one tiling serves them all; the training step ran 1.5×
 * (quickstart) and 1.7× (small) faster. Without subgroups the 8×8 tile stays: a workgroup-uniform
 * row layout, wider tiles and k-unrolling gave no consistent gain (llvmpipe's per-lane load loop is
 * the cost, and only sharing loads across lanes cuts it).
 */
export function matmulTiling(_s: MatmulShape, opts: LoweringOptions = {}): MatmulTiling {
  return opts.subgroupMatmul ? subgroupTiling : defaultTiling;
}

/** Whether an adapter suits the subgroup forms (see subgroupFormsSuit in compiler/lower/target.ts, which says why not). */
export function subgroupMatmulSuits(features: ReadonlySet<string>, subgroupMinSize: number | undefined, software: boolean): boolean {
  const a: AdapterTraits = { features, subgroupMinSize, software };
  return subgroupFormsSuit(a).suits;
}

/** Lowers op kernels, sharing one generated kernel between ops with the same kind and arguments. */
export class KernelCache {
  private readonly byKey = new Map<string, RowKernel>();
  private readonly perKind = new Map<string, number>();

  constructor(private readonly target: LoweringTarget = {}) {}

  get(ref: KernelRef): RowKernel {
    const key = `${ref.kind}:${JSON.stringify(ref.args)}`;
    let k = this.byKey.get(key);
    if (!k) {
      const { generate } = formFor(ref.kind, this.target);
      const i = this.perKind.get(ref.kind) ?? 0;
      this.perKind.set(ref.kind, i + 1);
      k = generate(`${ref.kind}_${i}`, ...ref.args);
      this.byKey.set(key, k);
    }
    return k;
  }
}
