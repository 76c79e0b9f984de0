import type { TrialConfig } from '../frontend/types.js';
import { expertCapacity } from '../graph/moe.js';
import { expertChoiceOf } from '../routing/expert-choice.js';
import { CompileError, type CompiledTrial, compileTrial } from './compile.js';
import type { LayoutOptions } from '../graph/layout.js';
import type { LoweringOptions } from './kernels.js';
import { type DeviceLimits, type LimitProblem, limitProblems } from './summary.js';

/**
 * The layout a plan for these devices may use: parameter regions and vocabulary parts up to the
 * smallest binding (and buffer) any of them allows, so the plan fits every one of them.
 */
export function fitFor(limits: DeviceLimits | DeviceLimits[]): LayoutOptions {
  const all = Array.isArray(limits) ? limits : [limits];
  if (!all.length) return {};
  return { maxRegionBytes: Math.min(...all.map((l) => Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize))) };
}

/** The micro-batch the compiler chose because the written one does not fit (compileToFit). */
export interface MicroBatchSplit {
  /** train.batch and train.accumulate as the trial's file sets them. */
  from: { batch: number; accumulate: number };
  /** What the plan runs: the same batch × accumulate sequences per optimiser step. */
  batch: number;
  accumulate: number;
  /** The limit the written micro-batch is over, in words (the device's, and the profile's name). */
  limit: string;
}

/** "batch 32 runs as 4 micro-batches of 8 to fit ...": the compile summary's and the run's line. */
export function splitMessage(s: MicroBatchSplit): string {
  const n = s.accumulate / s.from.accumulate;
  const acc = s.from.accumulate > 1 ? ` (accumulate ${s.from.accumulate} -> ${s.accumulate})` : '';
  return `batch ${s.from.batch} runs as ${n} micro-batches of ${s.batch}${acc}, the same ${s.batch * s.accumulate} sequences per step, to fit ${s.limit}`;
}

const all = (limits: DeviceLimits | DeviceLimits[]) => (Array.isArray(limits) ? limits : [limits]);

/** The limits' problems with a plan, the first device's first (each device's largest first). */
function problemsOn(c: CompiledTrial, limits: DeviceLimits[]): { problem: LimitProblem; limits: DeviceLimits; count: number }[] {
  return limits.flatMap((l) => {
    const p = limitProblems(c, l);
    return p.length ? [{ problem: p[0]!, limits: l, count: p.length }] : [];
  });
}

/**
 * The largest micro-batch (a divisor of train.batch) whose plan fits every one of `limits`, with the
 * accumulation that keeps the sequences per step, and its plan. Undefined when no split fits (the
 * parameters alone are too large, or one sequence is).
 */
export function fittingMicroBatch(c: TrialConfig, limits: DeviceLimits | DeviceLimits[], lowering: LoweringOptions = {}, name = 'fit'): { batch: number; accumulate: number; compiled: CompiledTrial } | undefined {
  const { batch, accumulate } = c.train;
  for (let d = 2; d <= batch; d++) {
    if (batch % d !== 0) continue;
    const train = { ...c.train, batch: batch / d, accumulate: accumulate * d };
    try {
      const compiled = compileTrial({ ...c, train }, name, lowering, fitFor(limits));
      if (!problemsOn(compiled, all(limits)).length) return { batch: train.batch, accumulate: train.accumulate, compiled };
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
    }
  }
  return undefined;
}

/**
 * What a trial computes over its micro-batch as a whole, so that splitting the written batch would
 * change what it trains (not only the summation order): the Switch balance loss (f_i · P_i of the
 * micro-batch), token choice's capacity (slots per expert from the micro-batch's tokens), expert
 * choice over the micro-batch. Empty: the split is the same math.
 */
export function perMicroBatch(c: TrialConfig, microBatch: number): string[] {
  const moe = c.model.moe;
  if (!moe || moe.experts <= 1 || moe.dispatch === 'soft') return [];
  const out: string[] = [];
  if (moe.balance > 0) out.push(`the balance loss (model.moe.balance ${moe.balance}: N · Σ f_i · P_i over the micro-batch)`);
  const ec = expertChoiceOf(moe);
  if (ec) {
    if (ec.group !== 'sequence') out.push('expert choice over the micro-batch (choice-group batch)');
  } else {
    const units = (b: number) => (moe.unit === 'sequence' ? b : b * c.model.context);
    const drops = (b: number) => expertCapacity(moe, units(b)) < units(b) * moe.top;
    if (drops(c.train.batch) || drops(microBatch)) out.push(`the expert capacity (model.moe.capacity ${moe.capacity}: slots per expert from the micro-batch's tokens)`);
  }
  return out;
}

/** Why even one sequence per micro-batch does not fit (what the refusal of an unsplittable trial says), or undefined. */
function oneSequence(c: TrialConfig, name: string, devices: DeviceLimits[], lowering: LoweringOptions): { problem: LimitProblem; limits: DeviceLimits; count: number } | undefined {
  if (c.train.batch === 1) return undefined;
  const hint = "lower the context or the model's size (width, ffn, layers): train.batch 1 is the smallest micro-batch";
  const at1 = (p: LimitProblem): LimitProblem => ({ ...p, message: `even at train.batch 1 (micro-batches of one sequence), ${p.message}`, hint: p.ptr === '/train/batch' ? hint : p.hint });
  try {
    const one = compileTrial({ ...c, train: { ...c.train, batch: 1, accumulate: c.train.batch * c.train.accumulate } }, name, lowering, fitFor(devices));
    const [first] = problemsOn(one, devices);
    return first ? { ...first, problem: at1(first.problem) } : undefined;
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    return { problem: at1({ message: e.message, bytes: 0, ptr: e.ptr, hint: e.hint }), limits: { maxBufferSize: Infinity, maxStorageBufferBindingSize: Infinity }, count: 1 };
  }
}

/** A plan for the limits, or why there is none. */
export type FitResult =
  | { compiled: CompiledTrial; split?: MicroBatchSplit }
  | { unfit: { problem: LimitProblem; limits: DeviceLimits; count: number } }
  | { refusal: { message: string; ptr: string; hint: string } };

const named = (l: DeviceLimits) => (l.name ? ` (profile ${l.name})` : '');

/**
 * Compiles a trial for `limits`. When its activations are over a limit (its micro-batch of
 * train.batch sequences is too large), the plan runs the largest micro-batch that fits, with
 * accumulate multiplied to keep the sequences per step: the same math up to summation order and
 * the random draws per micro-batch. A trial that computes something over the micro-batch as a whole
 * (perMicroBatch) is refused instead, naming the micro-batch that fits: a split would change it.
 * A trial that fits compiles exactly as written. CompileErrors other than a grid too large propagate.
 */
export function compileToFit(c: TrialConfig, name: string, limits: DeviceLimits | DeviceLimits[], lowering: LoweringOptions = {}): FitResult {
  const devices = all(limits);
  let over: { problem: LimitProblem; limits: DeviceLimits; count: number } | undefined;
  let compiled: CompiledTrial | undefined;
  try {
    compiled = compileTrial(c, name, lowering, fitFor(devices));
  } catch (e) {
    // A grid past 65535 workgroups is the micro-batch's size too.
    if (!(e instanceof CompileError) || e.ptr !== '/train/batch') throw e;
    over = { problem: { message: e.message, bytes: 0, ptr: e.ptr, hint: e.hint, limit: "WebGPU's 65535 workgroups per dimension" }, limits: { maxBufferSize: Infinity, maxStorageBufferBindingSize: Infinity }, count: 1 };
  }
  if (compiled) {
    const problems = problemsOn(compiled, devices);
    if (!problems.length) return { compiled };
    // Only activations (and the total they make) shrink with the micro-batch.
    if (problems.some((p) => p.problem.ptr !== '/train/batch')) return { unfit: problems.find((p) => p.problem.ptr !== '/train/batch')! };
    over = problems[0]!;
  }
  const fit = fittingMicroBatch(c, devices, lowering, name);
  if (!fit) return { unfit: oneSequence(c, name, devices, lowering) ?? over! };
  const limit = `${over!.problem.limit ?? over!.problem.message}${named(over!.limits)}`;
  const why = perMicroBatch(c, fit.batch);
  if (why.length) {
    return {
      refusal: {
        ptr: '/train/batch',
        message: `train.batch ${c.train.batch} does not fit ${limit} (${over!.problem.message}); micro-batches of ${fit.batch} would, but this trial computes ${why.join(' and ')} per micro-batch, so moec does not split it by itself: that would change what it trains`,
        hint: `set train.batch ${fit.batch} and train.accumulate ${fit.accumulate} to train with ${why.length > 1 ? 'these' : 'it'} over micro-batches of ${fit.batch} (the same ${c.train.batch * c.train.accumulate} sequences per step), or lower the context or the model's size`,
      },
    };
  }
  const split: MicroBatchSplit = { from: { batch: c.train.batch, accumulate: c.train.accumulate }, batch: fit.batch, accumulate: fit.accumulate, limit };
  fit.compiled.split = split;
  fit.compiled.graph.notes.push(splitMessage(split));
  return { compiled: fit.compiled, split };
}
