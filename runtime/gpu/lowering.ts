import { type LoweringTarget, targetFor } from '../../compiler/lower/target.js';
import type { Gpu } from './device.js';

/**
 * The lowering target for this adapter: its features, subgroup size and kind, and the subgroup
 * forms where they were measured faster (a software adapter with subgroups of at least 8;
 * subgroupFormsSuit in compiler/lower/target.ts, docs/PERFORMANCE.md). Plans compiled with them run
 * only on adapters that have 'subgroups'; the executor's preflight says so if not.
 */
export function loweringFor(gpu: Gpu): LoweringTarget {
  const subgroupMinSize = (gpu.adapter.info as unknown as { subgroupMinSize?: number }).subgroupMinSize;
  return targetFor({ features: gpu.features, subgroupMinSize, software: gpu.info.software });
}
