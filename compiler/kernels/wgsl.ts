// WGSL literal helpers shared by every kernel generator, so a constant prints the same way everywhere.

import type { PlanKernel } from '../plan/types.js';

/** A u32 literal. */
export const u = (x: number) => `${x}u`;

/** An f32 literal of the value as f32 rounds it (what the shader will hold), in exponent form. */
export const f = (x: number) => Math.fround(x).toExponential();

/** An f32 literal of the double's shortest exponent form (optimizer hyper-parameters). */
export const fExp = (x: number) => x.toExponential();

/** An f32 literal in decimal form: integers get a trailing `.0` so WGSL reads them as f32. */
export const fDec = (x: number) => (Number.isInteger(x) ? `${x}.0` : `${x}`);

/** A kernel with a fixed dispatch grid, the form every generator here returns. */
export interface RowKernel extends PlanKernel {
  workgroups: [number, number, number];
}
