import type { MatmulF16 } from '../reference/matmul.js';
import type { MatmulKernel } from './matmul.js';

export type { F16Operand, MatmulF16 } from '../reference/matmul.js';

/** Index just past the `]` that closes the `[` at `open`. */
function closing(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    if (src[i] === '[') depth++;
    else if (src[i] === ']' && --depth === 0) return i + 1;
  }
  throw new Error('matmul f16: unbalanced brackets in the generated WGSL');
}

/** Wraps every load `X[...]` of one operand in the conversion `wrap`; returns the text and the count. */
function wrapLoads(src: string, x: string, wrap: (load: string) => string): { text: string; loads: number } {
  const re = new RegExp(`(?<![A-Za-z0-9_])${x}\\[`, 'g');
  let out = '';
  let at = 0;
  let loads = 0;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    const end = closing(src, m.index + x.length);
    out += src.slice(at, m.index) + wrap(src.slice(m.index, end));
    at = end;
    re.lastIndex = end;
    loads++;
  }
  return { text: out + src.slice(at), loads };
}

/**
 * WGSL's f32 -> f16 conversions (f16(x), pack2x16float) are indeterminate outside f16's finite range,
 * so values that IEEE rounding sends to ±inf (|x| >= 65520) are made so explicitly, as the host's
 * reference (reference/f16.ts) does; NaN stays NaN.
 */
export const f16OverflowWgsl = `
fn f16_overflow(x: f32, rounded: f32) -> f32 {
  let inf = bitcast<f32>((bitcast<u32>(x) & 0x80000000u) | 0x7f800000u);
  return select(select(rounded, x, x != x), inf, abs(x) >= 65520.0);
}`;

/**
 * The matmul `k` with its A and B operands read in f16 (mixed precision: products of f16 values,
 * accumulated in f32, as tensor cores do). A 'stored' operand is declared as an f16 array (needs
 * 'shader-f16') and each load converted to f32; a 'round' operand stays an f32 array and each load
 * is rounded to the nearest f16 value (ties to even, as pack2x16float does). Every other line of the generated kernel is unchanged, so both tilings get it; a generator
 * change that hides the loads from this rewrite fails here, not silently.
 */
export function withF16Operands(k: MatmulKernel, f16: MatmulF16): MatmulKernel {
  let wgsl = k.wgsl;
  for (const [x, how] of [['A', f16.a], ['B', f16.b]] as const) {
    const decl = new RegExp(`(var<storage, read> ${x}: array<)(vec4<f32>|f32)(>)`);
    const d = decl.exec(wgsl);
    if (!d) throw new Error(`matmul f16: no read-only declaration of operand ${x} in kernel '${k.name}'`);
    const vec = d[2] === 'vec4<f32>';
    if (how === 'stored') wgsl = wgsl.replace(decl, `$1${vec ? 'vec4<f16>' : 'f16'}$3`);
    const body = wgsl.indexOf('\nfn ');
    const head = wgsl.slice(0, body);
    const rest = wrapLoads(wgsl.slice(body), x, (load) => (how === 'stored' ? `${vec ? 'vec4<f32>' : 'f32'}(${load})` : `${vec ? 'round4' : 'round1'}(${load})`));
    if (rest.loads === 0) throw new Error(`matmul f16: found no loads of operand ${x} in kernel '${k.name}'`);
    wgsl = head + rest.text;
  }
  const stored = f16.a === 'stored' || f16.b === 'stored';
  const rounds = f16.a === 'round' || f16.b === 'round';
  // Rounding: pack2x16float gives the f16 bits (of a clamped value: outside f16's range its result
  // is indeterminate), decoded back by hand. Both f32(f16(x)) and
  // unpack2x16float(pack2x16float(x)) were folded to x on lavapipe (measured: 0.1 came back
  // unrounded), so the decode must be opaque to the shader compiler.
  const roundFns = `
fn half_bits_to_f32(h: u32) -> f32 {
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  let sign = (h & 0x8000u) << 16u;
  if (e == 0u) { return select(1.0, -1.0, sign != 0u) * f32(m) * 5.9604644775390625e-8; }
  if (e == 31u) { return bitcast<f32>(sign | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}
${f16OverflowWgsl}
fn round2(v: vec2<f32>) -> vec2<f32> {
  let p = pack2x16float(clamp(v, vec2<f32>(-65504.0), vec2<f32>(65504.0)));
  return vec2<f32>(f16_overflow(v.x, half_bits_to_f32(p & 0xffffu)), f16_overflow(v.y, half_bits_to_f32(p >> 16u)));
}
fn round1(x: f32) -> f32 { return round2(vec2<f32>(x, 0.0)).x; }
fn round4(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(round2(v.xy), round2(v.zw)); }`;
  if (rounds) {
    const entry = wgsl.indexOf('\n@compute');
    wgsl = wgsl.slice(0, entry) + roundFns + wgsl.slice(entry);
  }
  return { ...k, wgsl: stored ? `enable f16;\n${wgsl}` : wgsl, ...(stored ? { features: [...new Set([...(k.features ?? []), 'shader-f16'])] } : {}) };
}
