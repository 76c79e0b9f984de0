// Named device profiles for `moec compile --limits NAME`: the limits a plan is checked against and a
// matmul rate for the time estimate, for devices that are not at hand. Where each number comes from
// is stated beside it; the NVIDIA rows are estimates (no NVIDIA GPU was measured for this project).
import type { DeviceLimits } from './summary.js';

export interface DeviceProfile extends DeviceLimits {
  name: string;
  description: string;
  /** Where the limits and the rate come from. */
  source: string;
  /** f32 matmul FLOP/s the time estimate assumes (every FLOP of a step at this rate: a lower bound on the time). */
  matmulFlops?: number;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

export const profiles: DeviceProfile[] = [
  {
    name: 'webgpu',
    description: "WebGPU's guaranteed limits (what every adapter allows)",
    maxBufferSize: 256 * MiB,
    maxStorageBufferBindingSize: 128 * MiB,
    source: 'the WebGPU specification\'s default limits (maxBufferSize 268435456, maxStorageBufferBindingSize 134217728), which Dawn gives a device that requests none',
  },
  {
    name: 'lavapipe',
    description: 'Mesa lavapipe (llvmpipe), the software Vulkan adapter of the dev machines',
    maxBufferSize: 4096 * MiB,
    maxStorageBufferBindingSize: 128 * MiB,
    memoryBytes: 24 * GiB,
    matmulFlops: 19.5e9,
    source: '`moec doctor` on the 2-core dev machine (Mesa 25.0.7, LLVM 15): maxBufferSize 4096 MiB, maxStorageBufferBindingSize 128 MiB; memory is the host RAM (24 GiB there); rate: the best matmul `npm run bench` measured there (19.48 GFLOP/s, docs/PERFORMANCE.md)',
  },
  {
    name: 'nvidia-24gb',
    description: 'a 24 GB NVIDIA GPU (RTX 3090 / 4090 class) on Dawn\'s Vulkan backend',
    maxBufferSize: 4 * GiB,
    maxStorageBufferBindingSize: 2 * GiB,
    memoryBytes: 24 * GiB,
    matmulFlops: 20e12,
    source: 'estimate: Dawn on Vulkan reports maxBufferSize from the driver\'s maxMemoryAllocationSize and caps it (2-4 GiB seen in Chromium, gpuweb #6338); NVIDIA\'s driver reports maxStorageBufferRange 4294967295 (wgpu #8105), taken as 2 GiB per binding to stay under signed 32-bit sizes; rate: ~25% of an RTX 4090\'s 82.6 TFLOP/s f32 peak for a WGSL tiled f32 matmul without tensor cores',
  },
  {
    name: 'nvidia-80gb',
    description: 'an 80 GB NVIDIA GPU (A100 / H100 80 GB) on Dawn\'s Vulkan backend',
    maxBufferSize: 4 * GiB,
    maxStorageBufferBindingSize: 2 * GiB,
    memoryBytes: 80 * GiB,
    matmulFlops: 15e12,
    source: 'estimate: buffer limits as nvidia-24gb (same driver and Dawn caps; vulkaninfo on an H100 reports maxStorageBufferRange 4294967295, wgpu #8105); rate: ~75% of an A100\'s 19.5 TFLOP/s f32 peak, ~25% of an H100 SXM\'s 67 TFLOP/s, without tensor cores',
  },
];

export function profileNamed(name: string): DeviceProfile | undefined {
  return profiles.find((p) => p.name === name);
}
