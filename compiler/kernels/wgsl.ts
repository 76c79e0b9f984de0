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

export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** The most workgroups a dispatch may have along one dimension. */
export const MAX_GROUPS = 65535;

/** A 1-D grid over `count` elements that spills into y past `maxGroupsX` workgroups; `idx` is the element. */
export function grid(count: number, wg: number, maxGroupsX = MAX_GROUPS): { workgroups: [number, number, number]; idx: string } {
  const groups = ceilDiv(count, wg);
  const gx = Math.min(groups, maxGroupsX);
  return { workgroups: [gx, ceilDiv(groups, gx), 1], idx: `(wid.y * ${u(gx)} + wid.x) * ${u(wg)} + lid.x` };
}

/** The entry of a kernel over a `grid`: workgroup and local ids, the body and closing brace follow. */
export const entry = (wg: number) => `@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {`;

/** The optimisers' 16-byte uniform block: the learning rate and Adam's bias corrections (adamwUniforms). */
export const stepStruct = 'struct Step { lr: f32, bc1: f32, bc2: f32, pad: f32 }';

/** The 16-byte rng uniform block (dropoutUniforms): seed, step, whether this is a training pass. */
export const rngStruct = 'struct Rng { seed: u32, step: u32, train: u32, pad: u32 }';

/** Workgroups for one invocation per row, spilling into y past 65535 groups; `row` is the row index. */
export function perRowGrid(rows: number, wg: number): { workgroups: [number, number, number]; row: string } {
  const groups = Math.ceil(rows / wg);
  const gx = Math.min(groups, MAX_GROUPS);
  return { workgroups: [gx, Math.ceil(groups / gx), 1], row: `gid.y * ${u(gx * wg)} + gid.x` };
}

// Rows up to this length use the one-invocation-per-row form of the row kernels (LayerNorm, cross-
// entropy): no workgroup memory or barriers. On lavapipe it beat the workgroup-reduction form at
// every size measured (5-200x at rows of 64-4096, still ~2x at 16384); longer rows keep the
// workgroup form, which spreads one row over many invocations on a real GPU.
const PER_INVOCATION_MAX_ROW = 4096;

/** A row kernel's shape with its per-row form chosen from the row length, unless it names one. */
export function rowForm<S extends { perRow?: 'invocation' | 'workgroup' }>(s: S, rowLength: number): S {
  return s.perRow ? s : { ...s, perRow: rowLength <= PER_INVOCATION_MAX_ROW ? 'invocation' : 'workgroup' };
}
