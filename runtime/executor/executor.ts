import { assertValidPlan } from '../../compiler/plan/schema.js';
import type { Plan, PlanKernel } from '../../compiler/plan/types.js';
import { UserError } from '../../grammar/user-error.js';
import type { Gpu } from '../gpu/device.js';
import { createPipelines, isWarm, markWarm, type PipelineOptions } from './pipelines.js';
import { memoryBudget, preflight, regionSizes } from './preflight.js';

interface BoundBuffer {
  buffer: GPUBuffer;
  offset: number;
  bytes: number;
}

/** One dispatch, ready to encode: nothing is looked up or allocated per step. */
interface Step {
  label: string;
  kernel: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  x: number;
  y: number;
  z: number;
}

export interface KernelTime {
  /** Dispatch label (the kernel name unless the plan gave one). */
  label: string;
  kernel: string;
  dispatches: number;
  /** Mean GPU time per program run, in milliseconds. */
  ms: number;
  flops?: number;
  bytes?: number;
}

const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const align = (n: number, a: number) => Math.ceil(n / a) * a;

/**
 * Runs a Plan. Pipelines, buffers and bind groups are made once in `create`; each program becomes a
 * flat list of steps. WebGPU command buffers are single-use, so a run encodes that list into one
 * compute pass and one submit: no per-step allocation beyond the encoder, and no read-back unless
 * asked for.
 */
export class PlanExecutor {
  private readonly staging = new Map<string, GPUBuffer>();

  private constructor(
    readonly gpu: Gpu,
    readonly plan: Plan,
    private readonly buffers: Map<string, BoundBuffer>,
    private readonly allocations: GPUBuffer[],
    private readonly programs: Map<string, Step[]>,
  ) {}

  /** Validates the plan (schema, references, device limits) before any GPU work, then builds it. */
  static async create(gpu: Gpu, plan: unknown, source = 'plan', opts: PipelineOptions = {}): Promise<PlanExecutor> {
    assertValidPlan(plan, source);
    preflight(plan, gpu.limits, gpu.features, source, memoryBudget(gpu.info));
    gpu.checkAlive();
    const device = gpu.device;

    const allocations: GPUBuffer[] = [];
    const regions = new Map<string, GPUBuffer>();
    const buffers = new Map<string, BoundBuffer>();
    await gpu.scoped(`plan '${plan.name}' buffers`, () => {
      for (const [name, bytes] of regionSizes(plan)) {
        const b = device.createBuffer({ label: `region:${name}`, size: align(bytes, 16), usage: storageUsage() });
        regions.set(name, b);
        allocations.push(b);
      }
      for (const pb of plan.buffers) {
        if (pb.region !== undefined) {
          buffers.set(pb.name, { buffer: regions.get(pb.region)!, offset: pb.offset!, bytes: pb.bytes });
          continue;
        }
        const usage = pb.role === 'uniform' ? GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC : storageUsage();
        const b = device.createBuffer({ label: pb.name, size: align(pb.bytes, 16), usage });
        allocations.push(b);
        buffers.set(pb.name, { buffer: b, offset: 0, bytes: pb.bytes });
      }
    });

    const made = await createPipelines(gpu, plan.kernels, opts);
    const pipelines = new Map(plan.kernels.map((k) => [k.name, { pipeline: made.get(k.name)!, kernel: k }]));

    const programs = new Map<string, Step[]>();
    for (const [name, list] of Object.entries(plan.programs)) {
      const steps = await gpu.scoped(`program '${name}' bind groups`, () =>
        list.map((d): Step => {
          const { pipeline, kernel } = pipelines.get(d.kernel)!;
          const bindGroup = device.createBindGroup({
            label: d.label ?? d.kernel,
            layout: pipeline.getBindGroupLayout(0),
            entries: d.buffers.map((bn, i) => {
              const b = buffers.get(bn)!;
              return { binding: kernel.bindings[i]!.binding, resource: { buffer: b.buffer, offset: b.offset, size: align(b.bytes, 4) } };
            }),
          });
          const [x, y, z] = d.workgroups;
          return { label: d.label ?? d.kernel, kernel: d.kernel, pipeline, bindGroup, x, y, z };
        }),
      );
      programs.set(name, steps);
    }
    if (opts.warm ?? true) await warmUp(gpu, programs, allocations, opts);
    return new PlanExecutor(gpu, plan, buffers, allocations, programs);
  }

  private bound(name: string): BoundBuffer {
    const b = this.buffers.get(name);
    if (!b) throw new UserError(`plan '${this.plan.name}' has no buffer '${name}'`);
    return b;
  }

  private steps(program: string): Step[] {
    const steps = this.programs.get(program);
    if (!steps) throw new UserError(`plan '${this.plan.name}' has no program '${program}' (it has: ${[...this.programs.keys()].join(', ')})`);
    return steps;
  }

  /** Uploads host data into a buffer (parameters, a batch, step uniforms). */
  write(name: string, data: ArrayBufferView, byteOffset = 0): void {
    const b = this.bound(name);
    if (byteOffset + data.byteLength > b.bytes) {
      throw new UserError(`write of ${data.byteLength} bytes at ${byteOffset} overflows buffer '${name}' (${b.bytes} bytes)`);
    }
    this.gpu.device.queue.writeBuffer(b.buffer, b.offset + byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Encodes and submits `program` `times` times in one command buffer; does not wait. */
  run(program: string, times = 1): void {
    this.gpu.checkAlive();
    const steps = this.steps(program);
    const encoder = this.gpu.device.createCommandEncoder({ label: program });
    const pass = encoder.beginComputePass({ label: program });
    for (let t = 0; t < times; t++) {
      for (const s of steps) {
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(s.x, s.y, s.z);
      }
    }
    pass.end();
    this.gpu.device.queue.submit([encoder.finish()]);
  }

  /** Waits until the GPU has finished everything submitted. */
  async finish(): Promise<void> {
    await this.gpu.device.queue.onSubmittedWorkDone();
    this.gpu.checkAlive();
  }

  /** Reads a buffer back as f32 (or the raw bytes with `raw`). The only host sync point. */
  async read(name: string): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(name));
  }

  /** `bytes` bytes of a buffer from byte `start` (4-byte aligned), e.g. one row of the logits. */
  async readRange(name: string, start: number, bytes: number): Promise<ArrayBuffer> {
    const b = this.bound(name);
    if (start % 4 || bytes % 4 || start < 0 || start + bytes > b.bytes) throw new Error(`read of ${name}: bytes ${start}..${start + bytes} are outside its ${b.bytes} or not 4-byte aligned`);
    const staging = this.gpu.device.createBuffer({ label: `read:${name}:range`, size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const encoder = this.gpu.device.createCommandEncoder({ label: `read ${name} range` });
      encoder.copyBufferToBuffer(b.buffer, b.offset + start, staging, 0, bytes);
      this.gpu.device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      return staging.getMappedRange().slice(0);
    } finally {
      staging.destroy();
    }
  }

  async readBytes(name: string): Promise<ArrayBuffer> {
    return (await this.readManyBytes([name]))[0]!;
  }

  /** Reads several buffers back with one submit and one wait (the loss and its parts, the MoE diagnostics). */
  async readMany(names: string[]): Promise<Float32Array[]> {
    return (await this.readManyBytes(names)).map((b) => new Float32Array(b));
  }

  private async readManyBytes(names: string[]): Promise<ArrayBuffer[]> {
    if (new Set(names).size !== names.length) throw new Error(`readMany: a buffer is named twice in ${names.join(', ')}`);
    const bound = names.map((n) => this.bound(n));
    const encoder = this.gpu.device.createCommandEncoder({ label: `read ${names.join(',')}` });
    const stagings = names.map((name, i) => {
      const size = align(bound[i]!.bytes, 4);
      let staging = this.staging.get(name);
      if (!staging) {
        staging = this.gpu.device.createBuffer({ label: `read:${name}`, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        this.staging.set(name, staging);
      }
      encoder.copyBufferToBuffer(bound[i]!.buffer, bound[i]!.offset, staging, 0, size);
      return staging;
    });
    this.gpu.device.queue.submit([encoder.finish()]);
    await Promise.all(stagings.map((st) => st.mapAsync(GPUMapMode.READ)));
    return stagings.map((st, i) => {
      const copy = st.getMappedRange().slice(0, bound[i]!.bytes);
      st.unmap();
      return copy;
    });
  }

  /**
   * GPU time per dispatch label, from timestamp queries around each dispatch (each in its own pass),
   * averaged over `runs` runs after one warm-up. Returns undefined when the adapter has no timestamps.
   */
  async profile(program: string, runs = 3): Promise<KernelTime[] | undefined> {
    if (!this.gpu.hasTimestamps) return undefined;
    const steps = this.steps(program);
    const device = this.gpu.device;
    const count = steps.length * 2;
    const querySet = device.createQuerySet({ type: 'timestamp', count });
    const resolve = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const totals = new Map<string, KernelTime>();
    const kernels = new Map(this.plan.kernels.map((k) => [k.name, k]));
    try {
      for (let r = 0; r <= runs; r++) {
        const encoder = device.createCommandEncoder({ label: `profile ${program}` });
        steps.forEach((s, i) => {
          const pass = encoder.beginComputePass({
            label: s.label,
            timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
          });
          pass.setPipeline(s.pipeline);
          pass.setBindGroup(0, s.bindGroup);
          pass.dispatchWorkgroups(s.x, s.y, s.z);
          pass.end();
        });
        encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
        encoder.copyBufferToBuffer(resolve, 0, read, 0, count * 8);
        device.queue.submit([encoder.finish()]);
        await read.mapAsync(GPUMapMode.READ);
        const ns = new BigInt64Array(read.getMappedRange().slice(0));
        read.unmap();
        if (r === 0) continue; // warm-up
        steps.forEach((s, i) => {
          const ms = Number(ns[2 * i + 1]! - ns[2 * i]!) / 1e6 / runs;
          const k = kernels.get(s.kernel)!;
          const t = totals.get(s.label) ?? { label: s.label, kernel: s.kernel, dispatches: 0, ms: 0, flops: 0, bytes: 0 };
          t.ms += Math.max(ms, 0);
          if (r === 1) {
            t.dispatches += 1;
            t.flops! += k.flops ?? 0;
            t.bytes! += k.bytes ?? 0;
          }
          totals.set(s.label, t);
        });
      }
    } finally {
      querySet.destroy();
      resolve.destroy();
      read.destroy();
    }
    return [...totals.values()].sort((a, b) => b.ms - a.ms);
  }

  /**
   * GPU time per dispatch label without timestamp queries: each dispatch in its own submit, timed
   * on the host from submit to onSubmittedWorkDone, averaged over `runs` runs after one warm-up.
   * Includes submit and wake-up overhead (tens of microseconds), so it is for adapters without
   * 'timestamp-query'; `profile` is exact where they exist.
   */
  async profileBySubmit(program: string, runs = 3): Promise<KernelTime[]> {
    const steps = this.steps(program);
    const device = this.gpu.device;
    const kernels = new Map(this.plan.kernels.map((k) => [k.name, k]));
    const totals = new Map<string, KernelTime>();
    for (let r = 0; r <= runs; r++) {
      for (const s of steps) {
        this.gpu.checkAlive();
        const encoder = device.createCommandEncoder({ label: `profile ${s.label}` });
        const pass = encoder.beginComputePass({ label: s.label });
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(s.x, s.y, s.z);
        pass.end();
        const t0 = performance.now();
        device.queue.submit([encoder.finish()]);
        await device.queue.onSubmittedWorkDone();
        const ms = (performance.now() - t0) / runs;
        if (r === 0) continue; // warm-up
        const k = kernels.get(s.kernel)!;
        const t = totals.get(s.label) ?? { label: s.label, kernel: s.kernel, dispatches: 0, ms: 0, flops: 0, bytes: 0 };
        t.ms += ms;
        if (r === 1) {
          t.dispatches += 1;
          t.flops! += k.flops ?? 0;
          t.bytes! += k.bytes ?? 0;
        }
        totals.set(s.label, t);
      }
    }
    this.gpu.checkAlive();
    return [...totals.values()].sort((a, b) => b.ms - a.ms);
  }

  /**
   * Bytes of device memory this executor holds now: the plan's buffers and regions as allocated
   * (rounded up to 16 bytes) plus the read-back staging buffers made so far. What the plan's
   * peakBytes estimate should be checked against.
   */
  allocatedBytes(): { plan: number; staging: number } {
    const sum = (bs: Iterable<GPUBuffer>) => [...bs].reduce((a, b) => a + b.size, 0);
    return { plan: sum(this.allocations), staging: sum(this.staging.values()) };
  }

  destroy(): void {
    for (const b of this.allocations) b.destroy();
    for (const b of this.staging.values()) b.destroy();
    this.staging.clear();
  }
}

/**
 * Runs one workgroup of each kernel's first dispatch, one kernel per submit, so the driver compiles
 * it now and says so: lavapipe (llvmpipe) generates a shader's machine code at its first dispatch,
 * not when the pipeline is created, and left alone that time lands inside training step 1. The
 * buffers are new (all zero) and are cleared again afterwards, so the plan starts from the state
 * WebGPU gives it. Pipelines already dispatched on this device (shared with an earlier trial) are
 * counted without running.
 */
async function warmUp(gpu: Gpu, programs: Map<string, Step[]>, allocations: GPUBuffer[], opts: PipelineOptions): Promise<void> {
  const first = new Map<string, Step>();
  for (const steps of programs.values()) for (const s of steps) if (!first.has(s.kernel)) first.set(s.kernel, s);
  // Kernels no program dispatches have nothing to compile.
  const total = first.size;
  let done = 0;
  let shared = 0;
  const device = gpu.device;
  opts.onProgress?.({ done, total, shared });
  for (const s of first.values()) {
    if (isWarm(s.pipeline)) shared++;
    else {
      gpu.checkAlive();
      const encoder = device.createCommandEncoder({ label: `compile ${s.kernel}` });
      const pass = encoder.beginComputePass({ label: `compile ${s.kernel}` });
      pass.setPipeline(s.pipeline);
      pass.setBindGroup(0, s.bindGroup);
      pass.dispatchWorkgroups(1, 1, 1);
      pass.end();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      markWarm(s.pipeline);
    }
    done++;
    opts.onProgress?.({ done, total, shared });
  }
  const encoder = device.createCommandEncoder({ label: 'clear after compile' });
  for (const b of allocations) encoder.clearBuffer(b);
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  gpu.checkAlive();
}
