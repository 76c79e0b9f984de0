import type { TrialConfig } from '../frontend/types.js';
import { CompileError, compileTrial } from './compile.js';
import type { LayoutOptions } from '../graph/layout.js';
import type { LoweringOptions } from './kernels.js';
import { type DeviceLimits, limitProblems } from './summary.js';

/**
 * The layout a plan for these devices may use: parameter regions and vocabulary parts up to the
 * smallest binding (and buffer) any of them allows, so the plan fits every one of them.
 */
export function fitFor(limits: DeviceLimits | DeviceLimits[]): LayoutOptions {
  const all = Array.isArray(limits) ? limits : [limits];
  if (!all.length) return {};
  return { maxRegionBytes: Math.min(...all.map((l) => Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize))) };
}

/**
 * The largest micro-batch (a divisor of train.batch) whose plan fits `limits`, with the
 * accumulation that keeps the sequences per step: what a refusal for activations tells the user
 * to set. Undefined when no split fits (the parameters alone are too large, or one sequence is).
 */
export function fittingMicroBatch(c: TrialConfig, limits: DeviceLimits, lowering: LoweringOptions = {}): { batch: number; accumulate: number } | undefined {
  const { batch, accumulate } = c.train;
  for (let d = 2; d <= batch; d++) {
    if (batch % d !== 0) continue;
    const train = { ...c.train, batch: batch / d, accumulate: accumulate * d };
    try {
      if (!limitProblems(compileTrial({ ...c, train }, 'fit', lowering, fitFor(limits)), limits).length) return { batch: train.batch, accumulate: train.accumulate };
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
    }
  }
  return undefined;
}
