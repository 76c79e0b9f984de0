import { ceilDiv, checkDims } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { f16OverflowWgsl } from './matmul-f16.js';

/** One tensor to copy: `count` elements from src (f32 element offset) to dst (f16 element offset). */
export interface CastSegment {
  src: number;
  dst: number;
  count: number;
}

/** src (f32), dst (f16 where generated; the definition names it with the default type). */
const castBindings = (dst = 'array<f32>') => [read('src'), readWrite('dst', dst)];

/**
 * Writes f16 copies of parameter tensors: dst[seg.dst + i] = f16(src[seg.src + i]) for every
 * segment, in one dispatch (workgroup row y = segment, x over its elements; the segment table is
 * baked in). The f16 region has its own layout, 256-byte aligned per tensor, so binding offsets
 * stay legal. Bindings: src (read, f32), dst (read_write, f16). Needs 'shader-f16'.
 */
export function castF16Kernel(name: string, segments: CastSegment[], wg = 256): RowKernel {
  if (!segments.length) throw new Error(`${name}: no segments to cast`);
  const longest = Math.max(...segments.map((s) => s.count));
  checkDims(name, { longest, segments: segments.length, wg });
  const table = (key: keyof CastSegment) => `array<u32, ${segments.length}>(${segments.map((s) => `${s[key]}u`).join(', ')})`;
  const wgsl = `
enable f16;
${declarations(castBindings('array<f16>'))}
${f16OverflowWgsl}
var<private> SRC: array<u32, ${segments.length}> = ${table('src')};
var<private> DST: array<u32, ${segments.length}> = ${table('dst')};
var<private> COUNT: array<u32, ${segments.length}> = ${table('count')};
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let s = wid.y;
  let i = gid.x;
  if (i >= COUNT[s]) { return; }
  let x = src[SRC[s] + i];
  dst[DST[s] + i] = f16(f16_overflow(x, clamp(x, -65504.0, 65504.0)));
}
`;
  const total = segments.reduce((a, s) => a + s.count, 0);
  return { ...boundKernel(name, castBindings('array<f16>'), wgsl, [wg, 1, 1], { flops: 0, bytes: 6 * total, workgroups: [ceilDiv(longest, wg), segments.length, 1] as [number, number, number] }), features: ['shader-f16'] };
}

export const castF16 = defineKernel('cast_f16', (_segments: CastSegment[]) => castBindings(), { portable: (n, segments) => castF16Kernel(n, segments) });
