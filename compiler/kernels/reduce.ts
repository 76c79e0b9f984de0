// Shared pieces for row-wise kernels: one workgroup per row, a strided loop per invocation, then a
// tree reduction in workgroup memory. Workgroup sizes are powers of two.

/** Declares `red_<name>` workgroup arrays for the given reductions. */
export function reduceDecls(wg: number, names: string[]): string {
  return names.map((n) => `var<workgroup> red_${n}: array<f32, ${wg}>;`).join('\n');
}

/**
 * WGSL statements reducing the local values `vals[i]` (f32 expressions) across the workgroup with
 * `op` ('sum' or 'max'); afterwards `let <names[i]>_all` holds the result in every invocation.
 */
export function reduceBody(wg: number, names: string[], vals: string[], op: 'sum' | 'max', lid = 'lid.x'): string {
  if (wg & (wg - 1)) throw new Error(`workgroup size ${wg} must be a power of two`);
  const L: string[] = [];
  names.forEach((n, i) => L.push(`  red_${n}[${lid}] = ${vals[i]};`));
  L.push(`  workgroupBarrier();`);
  L.push(`  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {`);
  L.push(`    if (${lid} < s) {`);
  for (const n of names) {
    L.push(op === 'sum' ? `      red_${n}[${lid}] += red_${n}[${lid} + s];` : `      red_${n}[${lid}] = max(red_${n}[${lid}], red_${n}[${lid} + s]);`);
  }
  L.push(`    }`);
  L.push(`    workgroupBarrier();`);
  L.push(`  }`);
  for (const n of names) L.push(`  let ${n}_all = red_${n}[0];`);
  // Everyone has read the result before the array is reused by a later reduction.
  L.push(`  workgroupBarrier();`);
  return L.join('\n');
}

export { ceilDiv } from './wgsl.js';
import { entry } from './wgsl.js';

export function checkDims(kernel: string, dims: Record<string, number>): void {
  for (const [d, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${kernel}: ${d}=${v} must be a positive integer`);
  }
}

/**
 * The head of a kernel with one workgroup per row: the declarations, the workgroup arrays of the
 * given reductions, the entry, and `row`; the body and the closing brace follow.
 */
export function rowWorkgroupMain(decls: string, wg: number, reductions: string[]): string {
  return `${decls}\n${reduceDecls(wg, reductions)}\n${entry(wg)}\n  let row = wid.x;`;
}
