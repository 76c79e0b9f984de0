import { mix32 as mix32Host, dropoutScale, dropoutThreshold } from '../reference/dropout.js';
import { checkDims } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { type Binding, boundKernel, declarations, defineKernel, read, readWrite, uniform } from './definition.js';
import { entry, grid, MAX_GROUPS, rngStruct } from './wgsl.js';

export { dropoutUniforms } from '../reference/dropout.js';

export interface DropoutShape {
  /** Elements. */
  count: number;
  /** Drop probability, 0 <= p < 1. */
  p: number;
  /**
   * Distinguishes the dropout sites of one model (u32): sites with different salts draw independent
   * masks from the same seed and step; a site's forward and backward kernels must share it.
   */
  salt: number;
  /** Invocations per workgroup (default 256). */
  wg?: number;
  /** Lowers the point where workgroups spill into y; for tests. */
  maxGroupsX?: number;
}

/** In place: src (read_write), rng; otherwise src (read), dst (read_write), rng. */
const dropoutBindings = (src: string, dst: string, inPlace: boolean): Binding[] => [...(inPlace ? [readWrite(src)] : [read(src), readWrite(dst)]), uniform('rng', 'Rng')];

// The same mixer as reference/dropout.ts (mix32); u32 multiplication wraps in WGSL as Math.imul does.
// Shared by every kernel that draws from the seeded counter-based stream (dropout, random routers).
export const mix32Wgsl = `
fn mix32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}`;

/** An f32 WGSL literal that parses back to exactly this f32 value. */
const f32Literal = (x: number) => {
  const s = String(Math.fround(x));
  return /[.e]/.test(s) ? s : `${s}.0`;
};

function dropoutKernel(name: string, s: DropoutShape, src: string, dst: string, inPlace: boolean): RowKernel {
  const { count, p, salt } = s;
  const wg = s.wg ?? 256;
  const maxGroupsX = s.maxGroupsX ?? MAX_GROUPS;
  checkDims(name, { count, wg, maxGroupsX });
  if (!(p >= 0 && p < 1)) throw new Error(`${name}: dropout p=${p} must be in [0, 1)`);
  if (!Number.isInteger(salt) || salt < 0 || salt > 0xffffffff) throw new Error(`${name}: salt=${salt} must be a u32`);
  // More than 65535 workgroups spill into y; the index is linearised over the grid.
  const g = grid(count, wg, maxGroupsX);
  const b = dropoutBindings(src, dst, inPlace);
  const out = inPlace ? src : dst;
  const wgsl = `
${rngStruct}
${declarations(b)}
${mix32Wgsl}
${entry(wg)}
  let i = ${g.idx};
  if (i >= ${count}u) { return; }
  if (rng.train == 0u) {
    ${inPlace ? '// Evaluation: the identity, nothing to write.\n    return;' : `${out}[i] = ${src}[i];\n    return;`}
  }
  // dropoutKey in the reference; the salt's hash is baked in.
  let key = mix32(mix32(rng.seed ^ ${mix32Host(salt)}u) ^ rng.step);
  let keep = mix32(mix32(i ^ key) + key) >= ${dropoutThreshold(p)}u;
  ${out}[i] = select(0.0, ${src}[i] * ${f32Literal(dropoutScale(p))}, keep);
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 20 * count, bytes: 8 * count + 16, workgroups: g.workgroups });
}

/**
 * Inverted dropout forward: out = x · mask / (1 − p) while rng.train != 0, out = x otherwise; the mask
 * is hashed from (rng.seed, rng.step, salt, element index), so no mask buffer exists. In place by
 * default: bindings x (read_write), rng (uniform, 16 bytes, see dropoutUniforms). With
 * `inPlace: false`: x (read), out (write), rng.
 */
export function dropoutForwardKernel(name: string, s: DropoutShape, inPlace = true): RowKernel {
  return dropoutKernel(name, s, 'x', 'out', inPlace);
}

/**
 * Dropout backward: dx = dout · mask / (1 − p), regenerating the forward's mask; give it the same
 * shape, salt and rng buffer as the forward site. In place by default: bindings dout (read_write,
 * becomes dx), rng. With `inPlace: false`: dout (read), dx (write), rng.
 */
export function dropoutBackwardKernel(name: string, s: DropoutShape, inPlace = true): RowKernel {
  return dropoutKernel(name, s, 'dout', 'dx', inPlace);
}

// The graph's dropout sites: the forward in place on x, the backward from dout into dx.
export const dropoutForward = defineKernel('dropout_fwd', (_count: number, _p: number, _salt: number) => dropoutBindings('x', 'out', true), {
  portable: (n, count, p, salt) => dropoutForwardKernel(n, { count, p, salt }, true),
});
export const dropoutBackward = defineKernel('dropout_bwd', (_count: number, _p: number, _salt: number) => dropoutBindings('dout', 'dx', false), {
  portable: (n, count, p, salt) => dropoutBackwardKernel(n, { count, p, salt }, false),
});
