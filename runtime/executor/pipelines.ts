// Compute pipelines of a plan, created asynchronously (the event loop, and so the view's compile
// progress, runs on meanwhile) and shared per device: the trials of a sweep mostly run the same
// kernels (same WGSL, entry point and bindings), and a pipeline made for one serves every later one.
// They are created one at a time by default: several at once (8 before) gained nothing measurable
// on lavapipe, where creating the pipelines is 1 to 2 s of a 2 to 3 minute cold compile (the LLVM
// compile happens at the first dispatch; executor.ts), and 8 at once was no faster than 1 in
// alternating runs (docs/PERFORMANCE.md, `npm run bench -- --only compile-concurrency`). The knob
// stays so a hardware adapter, whose driver compiles at creation, can be measured the same way.
import { createHash } from 'node:crypto';
import type { PlanKernel } from '../../compiler/plan/types.js';
import { UserError } from '../../grammar/user-error.js';
import type { Gpu } from '../gpu/device.js';

export interface CompileProgress {
  /** Kernels compiled so far (or found compiled: shared with an earlier trial on this device). */
  done: number;
  total: number;
  /** Of `done`, how many were shared. */
  shared: number;
}

export interface PipelineOptions {
  /** Called as each kernel is compiled (first with done 0). */
  onProgress?: (p: CompileProgress) => void;
  /** Reuse pipelines made earlier on this device for identical kernels (default true). */
  share?: boolean;
  /** Pipelines created at once (default 1: one after another; see the top of this file). */
  concurrency?: number;
  /** Compile each kernel before the first step by dispatching it once (default true; see executor.ts). */
  warm?: boolean;
}

const caches = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** What makes two kernels the same pipeline: the WGSL, the entry point and the binding layout. */
export function kernelKey(k: PlanKernel): string {
  const h = createHash('sha256');
  h.update(k.entryPoint).update('\0').update(k.bindings.map((b) => `${b.binding}:${b.type}`).join(',')).update('\0').update(k.wgsl);
  return h.digest('hex');
}

const warmed = new WeakSet<GPUComputePipeline>();
/** Whether the pipeline has been dispatched once on its device (its machine code exists). */
export const isWarm = (p: GPUComputePipeline) => warmed.has(p);
export const markWarm = (p: GPUComputePipeline) => void warmed.add(p);

/** Pipelines cached on this device now (for tests and the bench). */
export function cachedPipelines(gpu: Gpu): number {
  return caches.get(gpu.device)?.size ?? 0;
}

function createOne(gpu: Gpu, k: PlanKernel): Promise<GPUComputePipeline> {
  const device = gpu.device;
  // Error scopes are a stack: each is pushed and popped synchronously around the calls it covers,
  // so pipelines compiling at once never pop each other's scope.
  device.pushErrorScope('validation');
  const layout = device.createPipelineLayout({
    bindGroupLayouts: [
      device.createBindGroupLayout({
        label: k.name,
        entries: k.bindings.map((b) => ({ binding: b.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: b.type } })),
      }),
    ],
  });
  const layoutError = device.popErrorScope();
  return gpu.compile(k.name, k.wgsl).then(async (module) => {
    const err = await layoutError;
    if (err) throw new UserError(`WebGPU validation error in kernel '${k.name}' (bind group layout): ${err.message.trim()}`, { hint: 'this is a bug in the plan or the kernel; please report it' });
    try {
      return await device.createComputePipelineAsync({ label: k.name, layout, compute: { module, entryPoint: k.entryPoint } });
    } catch (e) {
      gpu.checkAlive();
      throw new UserError(`WebGPU could not create the pipeline of kernel '${k.name}': ${(e as Error).message.trim()}`, { hint: 'this is a bug in the plan or the kernel; please report it' });
    }
  });
}

/** A pipeline per kernel name, at most `concurrency` compiling at any time. */
export async function createPipelines(gpu: Gpu, kernels: readonly PlanKernel[], opts: PipelineOptions = {}): Promise<Map<string, GPUComputePipeline>> {
  gpu.checkAlive();
  const share = opts.share ?? true;
  let cache = caches.get(gpu.device);
  if (!cache) caches.set(gpu.device, (cache = new Map()));
  const out = new Map<string, GPUComputePipeline>();
  const queue = [...kernels];
  const worker = async () => {
    for (let k = queue.shift(); k; k = queue.shift()) {
      const key = share ? kernelKey(k) : undefined;
      let p = key !== undefined ? cache!.get(key) : undefined;
      if (!p) {
        p = createOne(gpu, k);
        if (key !== undefined) {
          cache!.set(key, p);
          // A failed compile must not be served to the next trial as if it were a pipeline.
          p.catch(() => cache!.delete(key));
        }
      }
      out.set(k.name, await p);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 1, kernels.length)) }, worker));
  return out;
}
