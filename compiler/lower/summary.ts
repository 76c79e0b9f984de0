import type { Plan, PlanBuffer } from '../plan/types.js';
import type { CompiledTrial } from './compile.js';
import { loweringNames } from './kernels.js';
import type { MicroBatchSplit } from './fit.js';

export interface PlanSummary {
  name: string;
  /** Parameters in the plan (real elements, padding excluded). */
  params: number;
  kernels: number;
  dispatches: Record<string, number>;
  /** FLOPs of one train_step dispatch list (each micro-batch counts once per accumulation step). */
  flopsPerStep: number;
  tokensPerStep: number;
  /** What a "token" is: a text token, or a sample of the cluster task (its routed unit). */
  unit: 'token' | 'sample';
  /** Bytes per buffer role after memory planning (regions counted once). */
  bytesByRole: Record<string, number>;
  activations: { naiveBytes: number; plannedBytes: number; regions: number };
  /** Every byte the plan allocates on the device: the peak, since nothing is allocated while it runs. */
  peakBytes: number;
  largestBuffer: { name: string; bytes: number };
  largestBinding: { name: string; bytes: number };
  /** Adapter-specific kernels the plan was lowered with (e.g. subgroupMatmul); none: portable. */
  lowering: string[];
  /** FLOPs of one eval_step (one validation batch). */
  evalFlops: number;
  /** What the compiler chose for the user to know (a chunked LM head, a micro-batch split, ...). */
  notes: string[];
  /** Set when the written micro-batch did not fit and the plan runs smaller ones (lower/fit.ts). */
  split?: MicroBatchSplit;
}

/** Bytes each distinct allocation takes: a region once at its furthest extent, other buffers alone. */
export function allocations(plan: Plan): { name: string; bytes: number; role: PlanBuffer['role'] }[] {
  const regions = new Map<string, { name: string; bytes: number; role: PlanBuffer['role'] }>();
  const out: { name: string; bytes: number; role: PlanBuffer['role'] }[] = [];
  for (const b of plan.buffers) {
    if (b.region === undefined) out.push({ name: b.name, bytes: b.bytes, role: b.role });
    else {
      const r = regions.get(b.region) ?? { name: `region:${b.region}`, bytes: 0, role: b.role };
      r.bytes = Math.max(r.bytes, b.offset! + b.bytes);
      regions.set(b.region, r);
    }
  }
  return [...out, ...regions.values()];
}

export function summarize(c: CompiledTrial): PlanSummary {
  const { plan } = c;
  const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
  const step = c.spec.accumulate === 1 ? plan.programs.train_step! : [...plan.programs.zero_grads!, ...Array.from({ length: c.spec.accumulate }, () => plan.programs.micro_step!).flat(), ...plan.programs.update!];
  const allocs = allocations(plan);
  const bytesByRole: Record<string, number> = {};
  for (const a of allocs) bytesByRole[a.role] = (bytesByRole[a.role] ?? 0) + a.bytes;
  const largest = allocs.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const binding = plan.buffers.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return {
    name: plan.name,
    params: c.layout.count,
    kernels: plan.kernels.length,
    dispatches: Object.fromEntries(Object.entries(plan.programs).map(([k, v]) => [k, v.length])),
    flopsPerStep: step.reduce((a, d) => a + (kernels.get(d.kernel)!.flops ?? 0), 0),
    // The patch model's unit is the sample (routed whole), not the patch.
    tokensPerStep: c.patch ? c.spec.batch * c.spec.accumulate : c.spec.batch * c.spec.context * c.spec.accumulate,
    unit: c.patch ? 'sample' : 'token',
    bytesByRole,
    activations: { naiveBytes: c.memory.naiveBytes, plannedBytes: c.memory.plannedBytes, regions: c.memory.regions.length },
    peakBytes: allocs.reduce((a, b) => a + b.bytes, 0),
    largestBuffer: { name: largest.name, bytes: largest.bytes },
    largestBinding: { name: binding.name, bytes: binding.bytes },
    lowering: loweringNames(c.lowering),
    evalFlops: (plan.programs.eval_step ?? []).reduce((a, d) => a + (kernels.get(d.kernel)!.flops ?? 0), 0),
    notes: [...c.graph.notes],
    ...(c.split ? { split: c.split } : {}),
  };
}

/** What a trial's training will take at a matmul rate: a lower bound (every FLOP at that rate). */
export interface TimeEstimate {
  stepSeconds: number;
  trialSeconds: number;
  evaluations: number;
}

/** Step and trial time at `flopsPerSecond`: steps × step, plus each evaluation's batches of every evaluated set. */
export function estimateTime(s: PlanSummary, run: { steps: number; every: number; batches: number; sets: number }, flopsPerSecond: number): TimeEstimate {
  const stepSeconds = s.flopsPerStep / flopsPerSecond;
  const evaluations = run.every > 0 && run.sets > 0 ? Math.ceil(run.steps / run.every) : 0;
  const evalSeconds = (evaluations * run.sets * run.batches * s.evalFlops) / flopsPerSecond;
  return { stepSeconds, trialSeconds: run.steps * stepSeconds + evalSeconds, evaluations };
}

export interface DeviceLimits {
  /** A named profile's name (compile --limits), for messages. */
  name?: string;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Device memory, where known (WebGPU does not say; a flag or the adapter's vendor tables may). */
  memoryBytes?: number;
  /** The adapter's WebGPU features, where an adapter is at hand (kernels may need e.g. 'shader-f16'). */
  features?: ReadonlySet<string>;
}

/** WebGPU's guaranteed minimums, used when no adapter is at hand. */
export const defaultLimits: DeviceLimits = { maxBufferSize: 268435456, maxStorageBufferBindingSize: 134217728 };

export interface LimitProblem {
  message: string;
  /** What the allocation or binding needs; problems come largest first. */
  bytes: number;
  /** JSON pointer of the setting to change, for the diagnostic's position. */
  ptr: string;
  hint: string;
  /** The limit it is over, in words ('maxStorageBufferBindingSize 128.0 MiB'), for messages. */
  limit?: string;
}

// Limits below a MiB (tests force splits with them) in KiB, so the numbers say something.
const mib = (b: number) => (b >= 2 ** 20 || b === 0 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

/** What stops this plan from fitting the device: each oversized allocation or binding, and the total. */
export function limitProblems(c: CompiledTrial, limits: DeviceLimits): LimitProblem[] {
  const problems: LimitProblem[] = [];
  const blame = (role: PlanBuffer['role']) => (role === 'param' || role === 'grad' || role === 'optimizer' ? '/model' : '/train/batch');
  const advice = (role: PlanBuffer['role']) =>
    role === 'param' || role === 'grad' || role === 'optimizer' ? 'make the model smaller (width, layers, ffn or vocabulary)' : 'lower train.batch (use `accumulate` to keep the effective batch) or the context';
  for (const a of allocations(c.plan)) {
    if (a.bytes > limits.maxBufferSize) {
      problems.push({ bytes: a.bytes, message: `${a.name} needs ${mib(a.bytes)}, over the device's maxBufferSize of ${mib(limits.maxBufferSize)}`, ptr: blame(a.role), hint: advice(a.role), limit: `maxBufferSize ${mib(limits.maxBufferSize)}` });
    }
  }
  for (const b of c.plan.buffers) {
    if (b.bytes > limits.maxStorageBufferBindingSize) {
      problems.push({ bytes: b.bytes, message: `buffer '${b.name}' needs ${mib(b.bytes)}, over the device's maxStorageBufferBindingSize of ${mib(limits.maxStorageBufferBindingSize)}`, ptr: blame(b.role), hint: advice(b.role), limit: `maxStorageBufferBindingSize ${mib(limits.maxStorageBufferBindingSize)}` });
    }
  }
  const peak = allocations(c.plan).reduce((a, b) => a + b.bytes, 0);
  if (limits.memoryBytes !== undefined && peak > limits.memoryBytes) {
    problems.push({ bytes: peak, message: `the plan needs ${mib(peak)} of device memory; the device has ${mib(limits.memoryBytes)}`, ptr: '/train/batch', hint: advice('activation'), limit: `the device's ${mib(limits.memoryBytes)} of memory` });
  }
  // A missing feature comes first: no amount of memory makes the plan run.
  const needed = [...new Set(c.plan.kernels.flatMap((k) => k.features ?? []))];
  const missing = limits.features ? needed.filter((f) => !limits.features!.has(f)) : [];
  const featureProblems = missing.map((f) => ({
    bytes: 0, message: `the plan needs the WebGPU feature '${f}', which this adapter lacks`, ptr: '/train/precision',
    hint: f === 'shader-f16' ? 'use precision f32 on this adapter' : 'use an adapter that has it',
  }));
  return [...featureProblems, ...problems.sort((a, b) => b.bytes - a.bytes)];
}
