import type { DeviceLimits } from '../../compiler/lower/summary.js';
import { Gpu } from '../gpu/device.js';

/** The `--adapter NAME` option every GPU command shares. */
export const adapterOption = { adapter: { type: 'string' as const } };

export function openGpu(values: { adapter?: string | undefined }): Promise<Gpu> {
  return Gpu.open(values.adapter ? { adapter: values.adapter } : {});
}

/** What plans are checked against on this adapter: its buffer limits and features. */
export function limitsOf(gpu: Gpu): DeviceLimits {
  return { maxBufferSize: gpu.limits.maxBufferSize, maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize, features: gpu.features };
}
