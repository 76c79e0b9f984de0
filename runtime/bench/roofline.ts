// The adapter's best measured rates, and each kernel of a training step against them: a kernel far
// below both is limited by neither arithmetic nor memory but by how the adapter runs it.
import { matmulTiling, type LoweringOptions } from '../../compiler/lower/kernels.js';
import { wgslKernel } from '../../compiler/kernels/wgsl-kernel.js';
import { PlanBuilder } from '../../compiler/plan/builder.js';
import type { Gpu } from '../gpu/device.js';
import { PlanExecutor } from '../executor/executor.js';
import type { Plan } from '../../compiler/plan/types.js';
import { measureMatmul } from './matmul.js';

export interface Rates {
  /** Best matmul GFLOP/s over square shapes, with the tiling the lowering uses on this adapter. */
  matmulGflops: number;
  matmulShape: string;
  /** Best copy rate in GB/s (bytes read + bytes written per second), over a kernel and copyBufferToBuffer. */
  copyGBs: number;
  copyHow: string;
}

const COPY_FLOATS = 1 << 24; // 64 MiB each way: far past any cache

/** A plan copying `floats` floats (a multiple of 4) with a vec4 kernel, one vec4 per invocation. */
export function copyPlan(floats = COPY_FLOATS): Plan {
  const n4 = floats / 4;
  const wg = 256;
  const groups = Math.ceil(n4 / wg);
  const x = Math.min(groups, 32768);
  const k = wgslKernel('copy', `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.y * ${x}u + wid.x) * ${wg}u + lid.x;
  if (i < ${n4}u) { dst[i] = src[i]; }
}
`, [wg, 1, 1], { flops: 0, bytes: 8 * floats, workgroups: [x, Math.ceil(groups / x), 1] as [number, number, number] });
  const b = new PlanBuilder('copy');
  b.buffer('src', floats, 'input');
  b.buffer('dst', floats, 'output');
  b.dispatch('main', k, ['src', 'dst']);
  return b.build();
}

async function bestMs(run: () => void, finish: () => Promise<void>, reps: number, trials: number): Promise<number> {
  run();
  await finish();
  let best = Infinity;
  for (let t = 0; t < trials; t++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) run();
    await finish();
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  return best;
}

/** Measures the best matmul and copy rates of this adapter, best of `trials` each. */
export async function measureRates(gpu: Gpu, lowering: LoweringOptions, trials = 3): Promise<Rates> {
  let matmulGflops = 0;
  let matmulShape = '';
  for (const n of [256, 512, 1024]) {
    const s = { m: n, n, k: n };
    const r = await measureMatmul(gpu, s, matmulTiling(s, lowering), 300, trials);
    if (r.gflops > matmulGflops) [matmulGflops, matmulShape] = [r.gflops, `${n}³`];
  }
  const bytes = 8 * COPY_FLOATS;
  const ex = await PlanExecutor.create(gpu, copyPlan());
  let kernelMs: number;
  let bufferMs: number;
  try {
    kernelMs = await bestMs(() => ex.run('main'), () => ex.finish(), 4, trials);
  } finally {
    ex.destroy();
  }
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const src = gpu.device.createBuffer({ size: 4 * COPY_FLOATS, usage });
  const dst = gpu.device.createBuffer({ size: 4 * COPY_FLOATS, usage });
  try {
    const copy = () => {
      const enc = gpu.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, dst, 0, 4 * COPY_FLOATS);
      gpu.device.queue.submit([enc.finish()]);
    };
    bufferMs = await bestMs(copy, () => gpu.device.queue.onSubmittedWorkDone(), 4, trials);
  } finally {
    src.destroy();
    dst.destroy();
  }
  const kernelRate = bytes / kernelMs / 1e6;
  const bufferRate = bytes / bufferMs / 1e6;
  return kernelRate >= bufferRate
    ? { matmulGflops, matmulShape, copyGBs: kernelRate, copyHow: 'vec4 copy kernel' }
    : { matmulGflops, matmulShape, copyGBs: bufferRate, copyHow: 'copyBufferToBuffer' };
}

/** GPU time, work and traffic of one kernel kind in a step (summed over its dispatches). */
export interface KindProfile {
  kind: string;
  ms: number;
  share: number;
  dispatches: number;
  flops: number;
  bytes: number;
}

/** A markdown table of a step's kernels against the adapter's best rates, the costliest first. */
export function rooflineTable(profile: KindProfile[], rates: Rates, top = 14): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`;
  const rows = profile.slice(0, top).map((p) => {
    const gflops = p.flops / p.ms / 1e6;
    const gbs = p.bytes / p.ms / 1e6;
    return `| ${p.kind} | ${p.dispatches} | ${p.ms.toFixed(2)} | ${pct(p.share)} | ${p.flops ? `${gflops.toFixed(2)} | ${pct(gflops / rates.matmulGflops)}` : '— | —'} | ${gbs.toFixed(2)} | ${pct(gbs / rates.copyGBs)} |`;
  });
  return [
    `| kernel | dispatches | ms | share of step | GFLOP/s | of best matmul | GB/s | of best copy |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ];
}

/**
 * What the adapter's best matmul rate allows: were every FLOP of the step run at that rate, how
 * close to PyTorch could the step come? A bound no kernel tuning below that rate can pass.
 */
export function speedBound(flopsPerStep: number, msPerStep: number, torchMs: number, rates: Rates): string {
  const floorMs = flopsPerStep / (rates.matmulGflops * 1e6);
  const torchGflops = flopsPerStep / (torchMs * 1e6);
  return `the step is ${(flopsPerStep / 1e9).toFixed(3)} GFLOP: moec runs it at ${(flopsPerStep / (msPerStep * 1e6)).toFixed(2)} GFLOP/s, PyTorch at ${torchGflops.toFixed(2)}. At the adapter's best matmul rate (${rates.matmulGflops.toFixed(2)} GFLOP/s) for every FLOP it would take ${floorMs.toFixed(1)} ms, so moec / PyTorch could reach at most ${(torchMs / floorMs).toFixed(2)}× on this adapter without a faster matmul`;
}
