import type { PlanKernel } from '../plan/types.js';
import type { MatmulShape } from '../reference/matmul.js';
import { activationExpr, activationGradWgsl, activationWgsl } from './activation.js';
import { type Binding, boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { withF16Operands } from './matmul-f16.js';
import { u } from './wgsl.js';

export type { MatmulShape } from '../reference/matmul.js';

/** Output tile per invocation (tm × tn, tn a multiple of 4) and invocations per workgroup. */
export interface MatmulTiling {
  tm: number;
  tn: number;
  wgX: number;
  wgY: number;
  /**
   * 'tile' (default): each invocation owns a tm×tn block of C, anywhere.
   * 'subgroup': a workgroup of wgX invocations (wgY = 1) owns tm rows of C and its invocations run
   * along the columns, tn each; the A values are loaded once per 8 invocations and shared with
   * subgroupBroadcast. Needs the 'subgroups' feature with subgroups of at least 8 invocations.
   */
  layout?: 'tile' | 'subgroup';
}

/**
 * The subgroup tiling, for adapters that have 'subgroups' with a minimum subgroup size of 8 (lavapipe
 * on AVX2: exactly 8). 16 rows × 4 columns per invocation was the best of 8×4, 8×8, 16×2, 16×4,
 * 16×8, 24×4 and 32×2 on the shapes of docs/PERFORMANCE.md (runtime/bench/matmul-compare.ts).
 */
export const subgroupTiling: MatmulTiling = { tm: 16, tn: 4, wgX: 8, wgY: 1, layout: 'subgroup' };

// Measured on lavapipe (npm run bench): 8×8 outputs per invocation, no workgroup memory, is the
// fastest portable tiling tried; llvmpipe runs invocations as SIMD lanes and every load is a loop
// over the lanes, so register blocking (fewer loads per FMA) matters and shared memory plus
// barriers does not pay. Where subgroups of 8 exist, `subgroupTiling` is about 2× faster still.
export const defaultTiling: MatmulTiling = { tm: 8, tn: 8, wgX: 8, wgY: 8 };

export interface MatmulKernel extends PlanKernel {
  /** Workgroup counts for one dispatch of this kernel. */
  workgroups: [number, number, number];
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** Bytes a matmul reads and writes once: A, B, C, and pre / H when fused. */
function matmulBytes(s: MatmulShape): number {
  const { m: M, n: N, k: K } = s;
  const batch = s.batch ?? 1;
  const perC = 1 + (s.savePre ? 1 : 0) + (s.actGrad ? 1 : 0);
  return 4 * batch * (M * K + (s.broadcastB ? 0 : K * N) + perC * M * N) + (s.broadcastB ? 4 * K * N : 0);
}

const arrOf = (vec: boolean) => (vec ? 'array<vec4<f32>>' : 'array<f32>');

/** A, B, C, then as configured bias, pre (savePre), H (actGrad); each vec4 where the tiling reads it so (f32 for the definition). */
function matmulBindings(s: MatmulShape, aVec = false, bVec = false, cVec = false): Binding[] {
  const c = arrOf(cVec);
  return [read('A', arrOf(aVec)), read('B', arrOf(bVec)), readWrite('C', c), ...(s.bias ? [read('bias', c)] : []), ...(s.savePre ? [readWrite('pre', c)] : []), ...(s.actGrad ? [read('H', c)] : [])];
}

/** The activation functions the epilogue calls. */
function epilogueFns(s: MatmulShape): string[] {
  return [...((s.activation ?? 'none') !== 'none' ? [activationWgsl] : []), ...(s.actGrad ? [activationGradWgsl] : [])];
}

/**
 * The epilogue of one row of C (row offset `cRow`) over the `cols` columns from col0 an invocation
 * owns: bias, saved pre-activation, activation, fused act'(H), optional accumulation, guarded
 * stores. `acc(g)` is the vec4 of results of columns 4g .. 4g+3; `bias(g)`, if given, a hoisted vec4
 * of their bias (vec4 stores need cols a multiple of 4).
 */
function storeRow(s: MatmulShape, cVec: boolean, cRow: string, cols: number, acc: (g: number) => string, bias?: (g: number) => string): string[] {
  const { n: N } = s;
  const act = s.activation ?? 'none';
  if ((s.savePre || s.actGrad) && s.accumulate) throw new Error('matmul: savePre and actGrad do not combine with accumulate');
  const L: string[] = [];
  for (let g = 0; g < Math.ceil(cols / 4); g++) {
    const col = `col0 + ${u(4 * g)}`;
    if (cVec) {
      const idx = `(${cRow} + ${col}) / 4u`;
      L.push(`    if (${col} < ${u(N)}) {`);
      L.push(`      var v = ${acc(g)};`);
      if (s.bias) L.push(`      v += ${bias ? bias(g) : `bias[(${col}) / 4u]`};`);
      if (s.savePre) L.push(`      pre[${idx}] = v;`);
      if (act !== 'none') L.push(`      v = vec4<f32>(${[0, 1, 2, 3].map((t) => activationExpr(act, `v[${t}]`)).join(', ')});`);
      if (s.actGrad) L.push(`      let hv = H[${idx}];`, `      v *= vec4<f32>(${[0, 1, 2, 3].map((t) => `${s.actGrad}_grad(hv[${t}])`).join(', ')});`);
      L.push(s.accumulate ? `      C[${idx}] += v;` : `      C[${idx}] = v;`);
      L.push(`    }`);
      continue;
    }
    for (let t = 0; t < Math.min(4, cols - 4 * g); t++) {
      const c = `col0 + ${u(4 * g + t)}`;
      const idx = `${cRow} + ${c}`;
      L.push(`    if (${c} < ${u(N)}) {`);
      L.push(`      var v = ${acc(g)}[${t}];`);
      if (s.bias) L.push(`      v += bias[${c}];`);
      if (s.savePre) L.push(`      pre[${idx}] = v;`);
      if (act !== 'none') L.push(`      v = ${activationExpr(act, 'v')};`);
      if (s.actGrad) L.push(`      v *= ${s.actGrad}_grad(H[${idx}]);`);
      L.push(s.accumulate ? `      C[${idx}] += v;` : `      C[${idx}] = v;`);
      L.push(`    }`);
    }
  }
  return L;
}

/**
 * Generates a WGSL matmul specialised to one shape: C = op(A)·op(B) [+ bias] [activation] [+ C].
 * Shapes are baked in, so odd sizes cost only clamped loads and guarded stores, and operands whose
 * contiguous dimension is a multiple of 4 are read as vec4.
 */
export function matmulKernel(name: string, s: MatmulShape, tiling: MatmulTiling = defaultTiling): MatmulKernel {
  if (s.f16) return withF16Operands(matmulKernel(name, { ...s, f16: undefined }, tiling), s.f16);
  const { m: M, n: N, k: K } = s;
  const batch = s.batch ?? 1;
  if (tiling.layout === 'subgroup') return matmulSubgroupKernel(name, s, tiling);
  const { tm: TM, tn: TN } = tiling;
  if (TN % 4 !== 0 || TM % 4 !== 0) throw new Error(`matmul tiling ${TM}x${TN}: tm and tn must be multiples of 4`);
  for (const [d, v] of Object.entries({ M, N, K, batch })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`matmul ${name}: ${d}=${v} must be a positive integer`);
  }
  const KU = K % 4 === 0 ? 4 : 1; // k values per loop iteration
  const aVec = s.transA ? M % 4 === 0 : KU === 4;
  const bVec = s.transB ? KU === 4 : N % 4 === 0;
  const cVec = N % 4 === 0;
  const G = TN / 4;

  const L: string[] = [];
  const bind = matmulBindings(s, aVec, bVec, cVec);
  L.push(declarations(bind), ...epilogueFns(s));
  L.push(`@compute @workgroup_size(${tiling.wgX}, ${tiling.wgY}, 1)`);
  L.push(`fn main(@builtin(global_invocation_id) gid: vec3<u32>) {`);
  L.push(`  let col0 = gid.x * ${u(TN)};`);
  L.push(`  let row0 = gid.y * ${u(TM)};`);
  L.push(`  if (row0 >= ${u(M)} || col0 >= ${u(N)}) { return; }`);
  L.push(`  let aBase = gid.z * ${u(M * K)};`);
  L.push(`  let bBase = ${s.broadcastB ? '0u' : `gid.z * ${u(K * N)}`};`);
  // Clamped indices: rows/columns past the edge read valid memory and are never stored.
  for (let i = 0; i < TM; i++) L.push(`  let r${i} = min(row0 + ${u(i)}, ${u(M - 1)});`);
  for (let j = 0; j < TN; j++) L.push(`  let c${j} = min(col0 + ${u(j)}, ${u(N - 1)});`);
  if (s.transA && aVec) for (let h = 0; h < TM / 4; h++) L.push(`  let rg${h} = min(row0 + ${u(4 * h)}, ${u(M - 4)});`);
  if (!s.transB && bVec) for (let g = 0; g < G; g++) L.push(`  let cg${g} = min(col0 + ${u(4 * g)}, ${u(N - 4)});`);
  for (let i = 0; i < TM; i++) for (let g = 0; g < G; g++) L.push(`  var acc${i}_${g} = vec4<f32>(0.0);`);
  L.push(`  for (var k = 0u; k < ${u(K)}; k += ${u(KU)}) {`);

  // aVal(i, kk) / bVal(kk, j): WGSL expressions for op(A)[row i][k+kk] and op(B)[k+kk][col j].
  let aVal: (i: number, kk: number) => string;
  if (!s.transA) {
    for (let i = 0; i < TM; i++) {
      L.push(aVec ? `    let a${i} = A[(aBase + r${i} * ${u(K)} + k) / 4u];` : `    let a${i} = A[aBase + r${i} * ${u(K)} + k];`);
    }
    aVal = (i, kk) => (aVec ? `a${i}[${kk}]` : `a${i}`);
  } else if (aVec) {
    for (let kk = 0; kk < KU; kk++) {
      for (let h = 0; h < TM / 4; h++) L.push(`    let a${kk}_${h} = A[(aBase + (k + ${u(kk)}) * ${u(M)} + rg${h}) / 4u];`);
    }
    aVal = (i, kk) => `a${kk}_${Math.floor(i / 4)}[${i % 4}]`;
  } else {
    for (let kk = 0; kk < KU; kk++) {
      for (let i = 0; i < TM; i++) L.push(`    let a${kk}_${i} = A[aBase + (k + ${u(kk)}) * ${u(M)} + r${i}];`);
    }
    aVal = (i, kk) => `a${kk}_${i}`;
  }
  // bVec4(kk, g): a vec4 expression for op(B)[k+kk][col0+4g .. +3].
  let bVec4: (kk: number, g: number) => string;
  if (!s.transB && bVec) {
    for (let kk = 0; kk < KU; kk++) {
      for (let g = 0; g < G; g++) L.push(`    let b${kk}_${g} = B[(bBase + (k + ${u(kk)}) * ${u(N)} + cg${g}) / 4u];`);
    }
    bVec4 = (kk, g) => `b${kk}_${g}`;
  } else if (!s.transB) {
    for (let kk = 0; kk < KU; kk++) {
      for (let j = 0; j < TN; j++) L.push(`    let b${kk}_${j} = B[bBase + (k + ${u(kk)}) * ${u(N)} + c${j}];`);
    }
    bVec4 = (kk, g) => `vec4<f32>(${[0, 1, 2, 3].map((t) => `b${kk}_${4 * g + t}`).join(', ')})`;
  } else if (bVec) {
    for (let j = 0; j < TN; j++) L.push(`    let b${j} = B[(bBase + c${j} * ${u(K)} + k) / 4u];`);
    bVec4 = (kk, g) => `vec4<f32>(${[0, 1, 2, 3].map((t) => `b${4 * g + t}[${kk}]`).join(', ')})`;
  } else {
    for (let j = 0; j < TN; j++) L.push(`    let b${j} = B[bBase + c${j} * ${u(K)} + k];`);
    bVec4 = (_kk, g) => `vec4<f32>(${[0, 1, 2, 3].map((t) => `b${4 * g + t}`).join(', ')})`;
  }
  for (let kk = 0; kk < KU; kk++) {
    const bs = Array.from({ length: G }, (_, g) => {
      L.push(`    let bv${kk}_${g} = ${bVec4(kk, g)};`);
      return `bv${kk}_${g}`;
    });
    for (let i = 0; i < TM; i++) {
      for (let g = 0; g < G; g++) L.push(`    acc${i}_${g} = fma(vec4<f32>(${aVal(i, kk)}), ${bs[g]}, acc${i}_${g});`);
    }
  }
  L.push(`  }`);

  // Epilogue: bias, activation, optional accumulation into C, guarded stores.
  for (let i = 0; i < TM; i++) {
    L.push(`  if (row0 + ${u(i)} < ${u(M)}) {`);
    L.push(`    let cRow = gid.z * ${u(M * N)} + (row0 + ${u(i)}) * ${u(N)};`);
    L.push(...storeRow(s, cVec, 'cRow', TN, (g) => `acc${i}_${g}`));
    L.push(`  }`);
  }
  L.push(`}`);

  const wgsl = L.join('\n');
  return boundKernel(name, bind, wgsl, [tiling.wgX, tiling.wgY, 1], {
    flops: 2 * M * N * K * batch,
    bytes: matmulBytes(s),
    workgroups: [ceilDiv(ceilDiv(N, TN), tiling.wgX), ceilDiv(ceilDiv(M, TM), tiling.wgY), batch],
  });
}

/**
 * The 'subgroup' layout. On llvmpipe (lavapipe, Mesa 25.0) every storage-buffer load whose address
 * is not a compile-time constant is emitted as a loop over the SIMD lanes (extract the lane's
 * offset, bounds-check, branch, load, insert), some 6-8 instructions per lane per float, even when
 * the address is the same in every lane; the FMAs are cheap beside it. So the kernel minimises
 * loads per FMA: a workgroup owns tm rows (tm a multiple of 8) and its invocations run along the
 * columns, tn each; invocation s of each 8 loads A's rows 8h + s and subgroupBroadcast (one extract
 * and broadcast on llvmpipe) hands each value to all 8, so an invocation issues tm/8 + tn loads per
 * k for tm·tn FMAs (the 8×8 tile: tm + tn). Needs the 'subgroups' feature with subgroups of at
 * least 8 invocations (lane s must share a subgroup with lanes 0-7).
 */
function matmulSubgroupKernel(name: string, s: MatmulShape, tiling: MatmulTiling): MatmulKernel {
  const { m: M, n: N, k: K } = s;
  const batch = s.batch ?? 1;
  const { tm: TM, tn: TN, wgX: WG } = tiling;
  if (tiling.wgY !== 1 || TM % 8 !== 0 || WG % 8 !== 0 || ![1, 2, 4, 8].includes(TN)) {
    throw new Error(`matmul 'subgroup' tiling ${TM}x${TN} (${WG}x${tiling.wgY}): tm and wgX must be multiples of 8, tn 1, 2, 4 or 8, wgY 1`);
  }
  for (const [d, v] of Object.entries({ M, N, K, batch })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`matmul ${name}: ${d}=${v} must be a positive integer`);
  }
  const KU = K % 4 === 0 ? 4 : 1;
  const aVec = !s.transA && KU === 4;
  const bVec = s.transB ? KU === 4 : N % 4 === 0 && TN % 4 === 0;
  const cVec = N % 4 === 0 && TN % 4 === 0;
  const L: string[] = [];
  L.push(`enable subgroups;`);
  const bind = matmulBindings(s, aVec, bVec, cVec);
  L.push(declarations(bind), ...epilogueFns(s));
  L.push(`@compute @workgroup_size(${WG}, 1, 1)`);
  L.push(`fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {`);
  L.push(`  let row0 = wid.y * ${u(TM)};`);
  L.push(`  let col0 = (wid.x * ${u(WG)} + lid.x) * ${u(TN)};`);
  L.push(`  let aBase = wid.z * ${u(M * K)};`);
  L.push(`  let bBase = ${s.broadcastB ? '0u' : `wid.z * ${u(K * N)}`};`);
  L.push(`  let s8 = sid % 8u; // this invocation loads rows 8h + s8 for the 8 lanes it shares a subgroup with`);
  for (let h = 0; h < TM / 8; h++) L.push(`  let ra${h} = min(row0 + ${u(8 * h)} + s8, ${u(M - 1)});`);
  for (let j = 0; j < TN; j++) L.push(`  let c${j} = min(col0 + ${u(j)}, ${u(N - 1)});`);
  if (cVec) for (let g = 0; g < TN / 4; g++) L.push(`  let cg${g} = min(col0 + ${u(4 * g)}, ${u(N - 4)});`);
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN; j++) L.push(`  var acc${i}_${j} = 0.0;`);
  L.push(`  for (var k = 0u; k < ${u(K)}; k += ${u(KU)}) {`);
  let aVal: (i: number, kk: number) => string;
  if (!s.transA) {
    for (let h = 0; h < TM / 8; h++) L.push(aVec ? `    let al${h} = A[(aBase + ra${h} * ${u(K)} + k) / 4u];` : `    let al${h} = A[aBase + ra${h} * ${u(K)} + k];`);
    for (let i = 0; i < TM; i++) L.push(`    let a${i} = subgroupBroadcast(al${i >> 3}, ${u(i % 8)});`);
    aVal = (i, kk) => (aVec ? `a${i}[${kk}]` : `a${i}`);
  } else {
    for (let kk = 0; kk < KU; kk++) {
      for (let h = 0; h < TM / 8; h++) L.push(`    let al${kk}_${h} = A[aBase + (k + ${u(kk)}) * ${u(M)} + ra${h}];`);
      for (let i = 0; i < TM; i++) L.push(`    let a${kk}_${i} = subgroupBroadcast(al${kk}_${i >> 3}, ${u(i % 8)});`);
    }
    aVal = (i, kk) => `a${kk}_${i}`;
  }
  let bVal: (kk: number, j: number) => string;
  if (!s.transB && bVec) {
    for (let kk = 0; kk < KU; kk++) for (let g = 0; g < TN / 4; g++) L.push(`    let b${kk}_${g} = B[(bBase + (k + ${u(kk)}) * ${u(N)} + cg${g}) / 4u];`);
    bVal = (kk, j) => `b${kk}_${Math.floor(j / 4)}[${j % 4}]`;
  } else if (!s.transB) {
    for (let kk = 0; kk < KU; kk++) for (let j = 0; j < TN; j++) L.push(`    let b${kk}_${j} = B[bBase + (k + ${u(kk)}) * ${u(N)} + c${j}];`);
    bVal = (kk, j) => `b${kk}_${j}`;
  } else if (bVec) {
    for (let j = 0; j < TN; j++) L.push(`    let b${j} = B[(bBase + c${j} * ${u(K)} + k) / 4u];`);
    bVal = (kk, j) => `b${j}[${kk}]`;
  } else {
    for (let j = 0; j < TN; j++) L.push(`    let b${j} = B[bBase + c${j} * ${u(K)} + k];`);
    bVal = (_kk, j) => `b${j}`;
  }
  for (let kk = 0; kk < KU; kk++) {
    for (let i = 0; i < TM; i++) for (let j = 0; j < TN; j++) L.push(`    acc${i}_${j} = fma(${aVal(i, kk)}, ${bVal(kk, j)}, acc${i}_${j});`);
  }
  L.push(`  }`);
  if (s.bias && cVec) for (let g = 0; g < TN / 4; g++) L.push(`  let bias${g} = bias[cg${g} / 4u];`);
  const cBase = `wid.z * ${u(M * N)}`;
  // tn is 1, 2, 4 or 8: with fewer than 4 the vec4's other lanes are zeros, never stored.
  const accVec = (i: number, g: number) => `vec4<f32>(${[0, 1, 2, 3].map((t) => (4 * g + t < TN ? `acc${i}_${4 * g + t}` : '0.0')).join(', ')})`;
  for (let i = 0; i < TM; i++) {
    L.push((Math.ceil(M / TM) - 1) * TM + i >= M ? `  if (row0 + ${u(i)} < ${u(M)}) {` : `  {`);
    L.push(`    let cRow = ${cBase} + (row0 + ${u(i)}) * ${u(N)};`);
    L.push(...storeRow(s, cVec, 'cRow', TN, (g) => accVec(i, g), (g) => `bias${g}`));
    L.push(`  }`);
  }
  L.push(`}`);
  return boundKernel(name, bind, L.join('\n'), [WG, 1, 1], {
    flops: 2 * M * N * K * batch,
    bytes: matmulBytes(s),
    workgroups: [ceilDiv(ceilDiv(N, TN), WG), ceilDiv(M, TM), batch],
    features: ['subgroups'],
  });
}

/** The matmul op: the register-tiled portable form, the subgroup form where the target allows it (see matmulTiling in compiler/lower/kernels.ts). */
export const matmul = defineKernel('matmul', (s: MatmulShape) => matmulBindings(s), {
  portable: (n, s) => matmulKernel(n, s, defaultTiling),
  subgroup: (n, s) => matmulKernel(n, s, subgroupTiling),
});
