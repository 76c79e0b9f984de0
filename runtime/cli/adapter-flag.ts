import { Gpu } from '../gpu/device.js';

/** The `--adapter NAME` option every GPU command shares. */
export const adapterOption = { adapter: { type: 'string' as const } };

export function openGpu(values: { adapter?: string | undefined }): Promise<Gpu> {
  return Gpu.open(values.adapter ? { adapter: values.adapter } : {});
}
