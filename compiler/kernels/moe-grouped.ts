import type { GroupedMatmulShape } from '../reference/moe.js';
import { GridLimitError } from './grid-limit.js';
import { type SlotLayout, tokenOfWgsl } from '../routing/slots.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { type Binding, boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { geluFnWgsl, geluGradFnWgsl } from './activation.js';
import { u } from './wgsl.js';

export type { GroupedMatmulShape } from '../reference/moe.js';
// The subgroup forms live in moe-grouped-subgroup.ts (which imports this file's shared parts);
// re-exported for older callers. Their module bodies only define functions, so the cycle is safe.
export { groupedMatmulSubgroupKernel, groupedMatmulSubgroupTile, type GroupedMatmulTile, groupedWeightGradSubgroupKernel, type WeightGradTile } from './moe-grouped-subgroup.js';

export const MAX_GROUPS = 65535;

// Each invocation computes TM×TN outputs from registers, without workgroup memory: the tiling
// measured fastest on lavapipe for the dense matmul (kernels/matmul.ts), where invocations are SIMD
// lanes and fewer loads per FMA is what pays. Operands whose contiguous dimension is a multiple of
// 4 are read as vec4; a workgroup covers TR×TC outputs.
const TM = 8;
const TN = 8;
const WX = 8;
const WY = 8;
const TR = TM * WY;
const TC = TN * WX;
const G = TN / 4;

export const arr = (vec: boolean) => (vec ? 'array<vec4<f32>>' : 'array<f32>');
const vec4Of = (xs: string[]) => `vec4<f32>(${xs.join(', ')})`;

// Expert activations and their derivatives (cubic: x³, the experts of Chen et al. 2022).
export const actWgsl = `
${geluFnWgsl('act_gelu')}
fn act_relu(x: f32) -> f32 { return max(x, 0.0); }
fn act_cubic(x: f32) -> f32 { return x * x * x; }
fn grad_relu(x: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }
fn grad_cubic(x: f32) -> f32 { return 3.0 * x * x; }
${geluGradFnWgsl('grad_gelu')}`;

/**
 * The bindings of both grouped matmul forms, in binding order. With `cVec` (n a multiple of 4) the
 * per-slot rows C, pre, H and the bias are vec4 arrays: on llvmpipe every storage access is a loop
 * over the lanes, so a scalar epilogue (bias, H, pre and C per output) cost more than the k loop.
 */
export function groupedBindings(g: GroupedMatmulShape, aVec = false, bVec = false, cVec = false): Binding[] {
  return [
    read('A', arr(aVec)), read('B', arr(bVec)), readWrite('C', arr(cVec)), read('offsets', 'array<u32>'),
    ...(g.gather ? [read('perm', 'array<u32>')] : []),
    ...(g.bias ? [read('bias', arr(cVec))] : []),
    ...(g.actGrad ? [read('H', arr(cVec))] : []),
    ...(g.savePre ? [readWrite('pre', arr(cVec))] : []),
  ];
}

/** The bindings of both weight-gradient forms; A and D as the form reads them (f32, or vectors of it). */
export function weightGradBindings(g: WeightGradShape, aType = 'array<f32>', dType = 'array<f32>'): Binding[] {
  return [read('A', aType), read('D', dType), read('offsets', 'array<u32>'), ...(g.gather ? [read('perm', 'array<u32>')] : []), readWrite('dW')];
}
export const groupedBiasGradBindings = () => [read('D'), read('offsets', 'array<u32>'), readWrite('db')];

/**
 * WGSL storing a tile's outputs: for each row (its guard, its slot, and one vec4 accumulator per 4
 * columns from col0), bias, saved pre-activation, activation, fused act'. Vec4 loads and stores
 * where n is a multiple of 4 (the bias loaded once per column group, not per row); scalar otherwise.
 */
export function groupedEpilogue(g: GroupedMatmulShape, rows: { guard: string; slot: string; acc: (q: number) => string }[], groups: number): string[] {
  const act = g.activation ?? 'none';
  const L: string[] = [];
  if (g.n % 4 === 0) {
    const each = (v: string, f: (x: string) => string) => vec4Of([0, 1, 2, 3].map((t) => f(`${v}[${t}]`)));
    if (g.bias) for (let q = 0; q < groups; q++) L.push(`  let bias${q} = bias[(e * ${u(g.n)} + min(col0 + ${u(4 * q)}, ${u(g.n - 4)})) / 4u];`);
    for (const r of rows) {
      L.push(`  if (${r.guard}) {`);
      for (let q = 0; q < groups; q++) {
        L.push(`    if (col0 + ${u(4 * q)} < ${u(g.n)}) {`);
        L.push(`      let o = (${r.slot} * ${u(g.n)} + col0 + ${u(4 * q)}) / 4u;`);
        L.push(`      var v = ${r.acc(q)};`);
        if (g.bias) L.push(`      v += bias${q};`);
        if (g.savePre) L.push('      pre[o] = v;');
        if (act !== 'none') L.push(`      v = ${each('v', (x) => `act_${act}(${x})`)};`);
        if (g.actGrad) L.push('      let h = H[o];', `      v *= ${each('h', (x) => `grad_${g.actGrad}(${x})`)};`);
        L.push('      C[o] = v;', '    }');
      }
      L.push('  }');
    }
    return L;
  }
  for (const r of rows) {
    L.push(`  if (${r.guard}) {`);
    for (let j = 0; j < 4 * groups; j++) {
      L.push(
        `    if (col0 + ${u(j)} < ${u(g.n)}) {`,
        `      let o = ${r.slot} * ${u(g.n)} + col0 + ${u(j)};`,
        `      var v = ${r.acc(j >> 2)}[${j % 4}];`,
        ...(g.bias ? [`      v += bias[e * ${u(g.n)} + col0 + ${u(j)}];`] : []),
        ...(g.savePre ? ['      pre[o] = v;'] : []),
        ...(act !== 'none' ? [`      v = act_${act}(v);`] : []),
        ...(g.actGrad ? [`      v *= grad_${g.actGrad}(H[o]);`] : []),
        '      C[o] = v;',
        '    }',
      );
    }
    L.push('  }');
  }
  return L;
}

/**
 * The parts both grouped matmul forms share, around their own A reads: clamped column indices and
 * vec4 accumulators before the k loop (`setup`), and in it the reads of op(B)[k+kk][col0 .. +4·groups]
 * (vec4 where the layout allows) and the FMAs into acc{i}_{q} (`body`); `aVal(i, kk)` is row i's A value.
 */
export function groupedColumns(g: GroupedMatmulShape, rows: number, groups: number, KU: number, bVec: boolean) {
  const { n: Nd, k: Kd } = g;
  const cols = 4 * groups;
  const setup: string[] = [];
  for (let j = 0; j < cols; j++) setup.push(`  let c${j} = min(col0 + ${u(j)}, ${u(Nd - 1)});`);
  if (!g.transB && bVec) for (let q = 0; q < groups; q++) setup.push(`  let cg${q} = min(col0 + ${u(4 * q)}, ${u(Nd - 4)});`);
  for (let i = 0; i < rows; i++) for (let q = 0; q < groups; q++) setup.push(`  var acc${i}_${q} = vec4<f32>(0.0);`);
  const body = (aVal: (i: number, kk: number) => string): string[] => {
    const L: string[] = [];
    let bv: (kk: number, q: number) => string;
    if (!g.transB && bVec) {
      for (let kk = 0; kk < KU; kk++) for (let q = 0; q < groups; q++) L.push(`    let b${kk}_${q} = B[(bBase + (k + ${u(kk)}) * ${u(Nd)} + cg${q}) / 4u];`);
      bv = (kk, q) => `b${kk}_${q}`;
    } else if (!g.transB) {
      bv = (kk, q) => vec4Of([0, 1, 2, 3].map((t) => `B[bBase + (k + ${u(kk)}) * ${u(Nd)} + c${4 * q + t}]`));
    } else if (bVec) {
      for (let j = 0; j < cols; j++) L.push(`    let b${j} = B[(bBase + c${j} * ${u(Kd)} + k) / 4u];`);
      bv = (kk, q) => vec4Of([0, 1, 2, 3].map((t) => `b${4 * q + t}[${kk}]`));
    } else {
      bv = (_kk, q) => vec4Of([0, 1, 2, 3].map((t) => `B[bBase + c${4 * q + t} * ${u(Kd)} + k]`));
    }
    for (let kk = 0; kk < KU; kk++) {
      for (let q = 0; q < groups; q++) L.push(`    let bv${kk}_${q} = ${bv(kk, q)};`);
      for (let i = 0; i < rows; i++) for (let q = 0; q < groups; q++) L.push(`    acc${i}_${q} = fma(vec4<f32>(${aVal(i, kk)}), bv${kk}_${q}, acc${i}_${q});`);
    }
    return L;
  };
  return { setup, body };
}

/**
 * Grouped expert matmul over all experts in one dispatch: for every slot s (a row of the
 * expert-contiguous order, expert e owning slots offsets[e] .. offsets[e+1]),
 * C[s] = A[row(s)] · B[e] (+ bias[e]) (activation), where row(s) = perm[s] / top with `gather`
 * (the token's hidden state, read in place: no gathered copy) or s. The y grid holds
 * ceil(rows / TR) + E row tiles, enough for any split of the slots; each workgroup walks the
 * offsets to find its expert and its tile inside that expert, so no tile straddles two experts and
 * no padded copies exist. Surplus workgroups exit. Slots ≥ offsets[E] are never written.
 * Bindings: A, B (read; B is E×k×n, or E×n×k with transB), C (write), offsets (read), then as
 * configured: perm (read), bias (read, E×n), H (read, actGrad: the result is multiplied by
 * act'(H), the activation's backward fused), pre (write, savePre: the pre-activation).
 */
export function groupedMatmulKernel(name: string, g: GroupedMatmulShape): RowKernel {
  const { rows, n: Nd, k: Kd, experts: E } = g;
  checkDims(name, { rows, n: Nd, k: Kd, experts: E });
  const act = g.activation ?? 'none';
  const tilesY = ceilDiv(rows, TR) + E;
  if (tilesY > MAX_GROUPS) throw new GridLimitError(`${name}: ${tilesY} row tiles exceed ${MAX_GROUPS} workgroups`);
  const KU = Kd % 4 === 0 ? 4 : 1; // k values per loop iteration
  const aVec = KU === 4;
  const bVec = g.transB ? KU === 4 : Nd % 4 === 0;
  const b = groupedBindings(g, aVec, bVec, Nd % 4 === 0);
  const L: string[] = [];
  for (let i = 0; i < TM; i++) {
    L.push(`  let s${i} = min(row0 + ${u(i)}, hi - 1u);`);
    L.push(`  let ar${i} = ${g.gather ? `(${tokenOfWgsl(g.gather, `perm[s${i}]`)})` : `s${i}`} * ${u(Kd)};`);
  }
  const cols = groupedColumns(g, TM, G, KU, bVec);
  L.push(...cols.setup);
  L.push(`  for (var k = 0u; k < ${u(Kd)}; k += ${u(KU)}) {`);
  for (let i = 0; i < TM; i++) L.push(aVec ? `    let a${i} = A[(ar${i} + k) / 4u];` : `    let a${i} = A[ar${i} + k];`);
  L.push(...cols.body((i, kk) => (aVec ? `a${i}[${kk}]` : `a${i}`)));
  L.push(`  }`);
  L.push(...groupedEpilogue(g, Array.from({ length: TM }, (_, i) => ({ guard: `row0 + ${u(i)} < hi`, slot: `s${i}`, acc: (q: number) => `acc${i}_${q}` })), G));
  const wgsl = `
${declarations(b)}
${act !== 'none' || g.actGrad ? actWgsl : ''}
@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // This workgroup's expert and its row tile inside that expert.
  var tile = wid.y;
  var e = ${u(E)};
  for (var x = 0u; x < ${u(E)}; x++) {
    let tiles = (offsets[x + 1u] - offsets[x] + ${u(TR - 1)}) / ${u(TR)};
    if (tile < tiles) { e = x; break; }
    tile -= tiles;
  }
  if (e == ${u(E)}) { return; }
  let hi = offsets[e + 1u];
  let row0 = offsets[e] + tile * ${u(TR)} + lid.y * ${u(TM)};
  let col0 = wid.x * ${u(TC)} + lid.x * ${u(TN)};
  if (row0 >= hi || col0 >= ${u(Nd)}) { return; }
  let bBase = e * ${u(Kd * Nd)};
${L.join('\n')}
}
`;
  return boundKernel(name, b, wgsl, [WX, WY, 1], {
    flops: 2 * rows * Nd * Kd,
    bytes: 4 * (rows * (Kd + Nd * (1 + (g.savePre ? 1 : 0) + (g.actGrad ? 1 : 0))) + E * Kd * Nd),
    workgroups: [ceilDiv(Nd, TC), tilesY, 1],
  });
}

/** Shape of a grouped weight gradient: dW[e] is k×n; `rows` (slots summed over) only counts FLOPs. */
export interface WeightGradShape {
  k: number;
  n: number;
  experts: number;
  gather?: SlotLayout;
  rows?: number;
}

/**
 * Expert weight gradients in one dispatch: dW[e] += Σ_{slots s of e} A[row(s)]ᵀ · D[s] (dW[e] is
 * k×n), one workgroup per (n tile, k tile, expert), each summing its expert's slots in order, so
 * the result is deterministic. Bindings: A, D, offsets (read), [perm (read)], dW (read_write).
 */
export function groupedWeightGradKernel(name: string, g: WeightGradShape): RowKernel {
  const { k: Kd, n: Nd, experts: E } = g;
  const rows = g.rows ?? 0; // slots summed over (for the FLOP count)
  checkDims(name, { k: Kd, n: Nd, experts: E });
  const aVec = Kd % 4 === 0;
  const dVec = Nd % 4 === 0;
  const b = weightGradBindings(g, arr(aVec), arr(dVec));
  const L: string[] = [];
  if (aVec) for (let h = 0; h < TM / 4; h++) L.push(`  let rg${h} = min(row0 + ${u(4 * h)}, ${u(Kd - 4)});`);
  else for (let i = 0; i < TM; i++) L.push(`  let r${i} = min(row0 + ${u(i)}, ${u(Kd - 1)});`);
  if (dVec) for (let q = 0; q < G; q++) L.push(`  let cg${q} = min(col0 + ${u(4 * q)}, ${u(Nd - 4)});`);
  else for (let j = 0; j < TN; j++) L.push(`  let c${j} = min(col0 + ${u(j)}, ${u(Nd - 1)});`);
  for (let i = 0; i < TM; i++) for (let q = 0; q < G; q++) L.push(`  var acc${i}_${q} = vec4<f32>(0.0);`);
  L.push(`  for (var s = offsets[e]; s < offsets[e + 1u]; s++) {`);
  L.push(`    let a = ${g.gather ? `(${tokenOfWgsl(g.gather, 'perm[s]')})` : 's'} * ${u(Kd)};`);
  if (aVec) for (let h = 0; h < TM / 4; h++) L.push(`    let a${h} = A[(a + rg${h}) / 4u];`);
  const aVal = (i: number) => (aVec ? `a${Math.floor(i / 4)}[${i % 4}]` : `A[a + r${i}]`);
  for (let q = 0; q < G; q++) L.push(`    let d${q} = ${dVec ? `D[(s * ${u(Nd)} + cg${q}) / 4u]` : vec4Of([0, 1, 2, 3].map((t) => `D[s * ${u(Nd)} + c${4 * q + t}]`))};`);
  for (let i = 0; i < TM; i++) for (let q = 0; q < G; q++) L.push(`    acc${i}_${q} = fma(vec4<f32>(${aVal(i)}), d${q}, acc${i}_${q});`);
  L.push(`  }`);
  for (let i = 0; i < TM; i++) {
    L.push(`  if (row0 + ${u(i)} < ${u(Kd)}) {`);
    for (let j = 0; j < TN; j++) L.push(`    if (col0 + ${u(j)} < ${u(Nd)}) { dW[e * ${u(Kd * Nd)} + (row0 + ${u(i)}) * ${u(Nd)} + col0 + ${u(j)}] += acc${i}_${Math.floor(j / 4)}[${j % 4}]; }`);
    L.push(`  }`);
  }
  const wgsl = `
${declarations(b)}
@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = wid.z;
  let row0 = wid.y * ${u(TR)} + lid.y * ${u(TM)};
  let col0 = wid.x * ${u(TC)} + lid.x * ${u(TN)};
  if (row0 >= ${u(Kd)} || col0 >= ${u(Nd)}) { return; }
${L.join('\n')}
}
`;
  return boundKernel(name, b, wgsl, [WX, WY, 1], { flops: 2 * rows * Kd * Nd, bytes: 4 * (rows * (Kd + Nd) + 2 * E * Kd * Nd), workgroups: [ceilDiv(Nd, TC), ceilDiv(Kd, TR), E] });
}

/**
 * db[e, c] += Σ_{slots s of e} D[s, c], in slot order. Bindings: D, offsets (read), db (read_write,
 * E×n). `rows` (the slots summed over) only counts bytes.
 */
export function groupedBiasGradKernel(name: string, n: number, experts: number, rows = 0, wg = 64): RowKernel {
  checkDims(name, { n, experts, wg });
  const b = groupedBiasGradBindings();
  const wgsl = `
${declarations(b)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wid.x * ${u(wg)} + lid.x;
  let e = wid.y;
  if (c >= ${u(n)}) { return; }
  var acc = 0.0;
  for (var s = offsets[e]; s < offsets[e + 1u]; s++) { acc += D[s * ${u(n)} + c]; }
  db[e * ${u(n)} + c] += acc;
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 0, bytes: 4 * rows * n + 8 * experts * n, workgroups: [ceilDiv(n, wg), experts, 1] });
}
