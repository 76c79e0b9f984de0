import { type LoweringOptions, subgroupMatmulSuits } from '../../compiler/lower/kernels.js';
import type { Gpu } from './device.js';

/**
 * What the lowering may use on this adapter: the subgroup matmul where it was measured faster
 * (a software adapter with subgroups of at least 8; docs/PERFORMANCE.md). Plans compiled with it
 * run only on adapters that have 'subgroups'; the executor's preflight says so if not.
 */
export function loweringFor(gpu: Gpu): LoweringOptions {
  const minSize = (gpu.adapter.info as unknown as { subgroupMinSize?: number }).subgroupMinSize;
  return { subgroupMatmul: subgroupMatmulSuits(gpu.features, minSize, gpu.info.software) };
}
