import type { GroupedMatmulShape } from '../reference/moe.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { wgslKernel } from './wgsl-kernel.js';

export type { GroupedMatmulShape } from '../reference/moe.js';

const u = (x: number) => `${x}u`;
const MAX_GROUPS = 65535;

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

const declare = (decls: string[]) => decls.map((d, i) => `@group(0) @binding(${i}) ${d}`).join('\n');
const arr = (vec: boolean) => (vec ? 'array<vec4<f32>>' : 'array<f32>');
const vec4Of = (xs: string[]) => `vec4<f32>(${xs.join(', ')})`;

// Expert activations and their derivatives (cubic: x³, the experts of Chen et al. 2022).
export const actWgsl = `
fn act_gelu(x: f32) -> f32 {
  let c = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh(clamp(c, -15.0, 15.0)));
}
fn act_relu(x: f32) -> f32 { return max(x, 0.0); }
fn act_cubic(x: f32) -> f32 { return x * x * x; }
fn grad_relu(x: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }
fn grad_cubic(x: f32) -> f32 { return 3.0 * x * x; }
fn grad_gelu(x: f32) -> f32 {
  let c = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let t = tanh(clamp(c, -15.0, 15.0));
  let dc = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dc;
}`;

/** The bindings of both grouped matmul forms, in binding order. */
function groupedDecls(g: GroupedMatmulShape, aVec: boolean, bVec: boolean): string[] {
  const decls = [`var<storage, read> A: ${arr(aVec)};`, `var<storage, read> B: ${arr(bVec)};`, 'var<storage, read_write> C: array<f32>;', 'var<storage, read> offsets: array<u32>;'];
  if (g.gather) decls.push('var<storage, read> perm: array<u32>;');
  if (g.bias) decls.push('var<storage, read> bias: array<f32>;');
  if (g.actGrad) decls.push('var<storage, read> H: array<f32>;');
  if (g.savePre) decls.push('var<storage, read_write> pre: array<f32>;');
  return decls;
}

/** WGSL storing output column col0 + j of slot `slot` from `acc`: bias, saved pre-activation, activation, fused act'. */
function groupedStore(g: GroupedMatmulShape, slot: string, j: number, acc: string): string[] {
  const act = g.activation ?? 'none';
  return [
    `    if (col0 + ${u(j)} < ${u(g.n)}) {`,
    `      let o = ${slot} * ${u(g.n)} + col0 + ${u(j)};`,
    `      var v = ${acc};`,
    ...(g.bias ? [`      v += bias[e * ${u(g.n)} + col0 + ${u(j)}];`] : []),
    ...(g.savePre ? ['      pre[o] = v;'] : []),
    ...(act !== 'none' ? [`      v = act_${act}(v);`] : []),
    ...(g.actGrad ? [`      v *= grad_${g.actGrad}(H[o]);`] : []),
    '      C[o] = v;',
    '    }',
  ];
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
  if (tilesY > MAX_GROUPS) throw new Error(`${name}: ${tilesY} row tiles exceed ${MAX_GROUPS} workgroups`);
  const KU = Kd % 4 === 0 ? 4 : 1; // k values per loop iteration
  const aVec = KU === 4;
  const bVec = g.transB ? KU === 4 : Nd % 4 === 0;
  const decls = groupedDecls(g, aVec, bVec);
  const L: string[] = [];
  for (let i = 0; i < TM; i++) {
    L.push(`  let s${i} = min(row0 + ${u(i)}, hi - 1u);`);
    L.push(`  let ar${i} = ${g.gather ? `(perm[s${i}] / ${u(g.gather.top)})` : `s${i}`} * ${u(Kd)};`);
  }
  for (let j = 0; j < TN; j++) L.push(`  let c${j} = min(col0 + ${u(j)}, ${u(Nd - 1)});`);
  if (!g.transB && bVec) for (let q = 0; q < G; q++) L.push(`  let cg${q} = min(col0 + ${u(4 * q)}, ${u(Nd - 4)});`);
  for (let i = 0; i < TM; i++) for (let q = 0; q < G; q++) L.push(`  var acc${i}_${q} = vec4<f32>(0.0);`);
  L.push(`  for (var k = 0u; k < ${u(Kd)}; k += ${u(KU)}) {`);
  for (let i = 0; i < TM; i++) L.push(aVec ? `    let a${i} = A[(ar${i} + k) / 4u];` : `    let a${i} = A[ar${i} + k];`);
  const aVal = (i: number, kk: number) => (aVec ? `a${i}[${kk}]` : `a${i}`);
  let bv: (kk: number, q: number) => string;
  if (!g.transB && bVec) {
    for (let kk = 0; kk < KU; kk++) for (let q = 0; q < G; q++) L.push(`    let b${kk}_${q} = B[(bBase + (k + ${u(kk)}) * ${u(Nd)} + cg${q}) / 4u];`);
    bv = (kk, q) => `b${kk}_${q}`;
  } else if (!g.transB) {
    bv = (kk, q) => vec4Of([0, 1, 2, 3].map((t) => `B[bBase + (k + ${u(kk)}) * ${u(Nd)} + c${4 * q + t}]`));
  } else if (bVec) {
    for (let j = 0; j < TN; j++) L.push(`    let b${j} = B[(bBase + c${j} * ${u(Kd)} + k) / 4u];`);
    bv = (kk, q) => vec4Of([0, 1, 2, 3].map((t) => `b${4 * q + t}[${kk}]`));
  } else {
    bv = (_kk, q) => vec4Of([0, 1, 2, 3].map((t) => `B[bBase + c${4 * q + t} * ${u(Kd)} + k]`));
  }
  for (let kk = 0; kk < KU; kk++) {
    for (let q = 0; q < G; q++) L.push(`    let bv${kk}_${q} = ${bv(kk, q)};`);
    for (let i = 0; i < TM; i++) for (let q = 0; q < G; q++) L.push(`    acc${i}_${q} = fma(vec4<f32>(${aVal(i, kk)}), bv${kk}_${q}, acc${i}_${q});`);
  }
  L.push(`  }`);
  for (let i = 0; i < TM; i++) {
    L.push(`  if (row0 + ${u(i)} < hi) {`);
    for (let j = 0; j < TN; j++) {
      L.push(...groupedStore(g, `s${i}`, j, `acc${i}_${Math.floor(j / 4)}[${j % 4}]`));
    }
    L.push(`  }`);
  }
  const wgsl = `
${declare(decls)}
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
  return wgslKernel(name, wgsl, [WX, WY, 1], {
    flops: 2 * rows * Nd * Kd,
    bytes: 4 * (rows * (Kd + Nd * (1 + (g.savePre ? 1 : 0) + (g.actGrad ? 1 : 0))) + E * Kd * Nd),
    workgroups: [ceilDiv(Nd, TC), tilesY, 1],
  });
}

/**
 * groupedMatmulKernel's subgroup form, for adapters where the dense subgroup matmul was measured
 * faster (kernels/matmul.ts, matmulSubgroupKernel; lowering option subgroupMatmul): a workgroup of
 * 8 invocations owns 16 slots of one expert and runs along the columns, 4 per invocation; invocation
 * s8 loads the A rows of slots s8 and 8 + s8 (gathered through perm) and subgroupBroadcast hands
 * them to all 8. No invocation returns before the loop (the broadcasts need all 8); columns past n
 * are clamped for loads and skipped for stores. Same bindings and results as groupedMatmulKernel.
 */
export function groupedMatmulSubgroupKernel(name: string, g: GroupedMatmulShape): RowKernel {
  const { rows, n: Nd, k: Kd, experts: E } = g;
  checkDims(name, { rows, n: Nd, k: Kd, experts: E });
  const SM = 16;
  const SN = 4;
  const SW = 8;
  const act = g.activation ?? 'none';
  const tilesY = ceilDiv(rows, SM) + E;
  if (tilesY > MAX_GROUPS) throw new Error(`${name}: ${tilesY} row tiles exceed ${MAX_GROUPS} workgroups`);
  const KU = Kd % 4 === 0 ? 4 : 1;
  const aVec = KU === 4;
  const bVec = g.transB ? KU === 4 : Nd % 4 === 0;
  const decls = groupedDecls(g, aVec, bVec);
  const L: string[] = [];
  for (let h = 0; h < 2; h++) {
    L.push(`  let sl${h} = min(row0 + ${u(8 * h)} + s8, hi - 1u);`);
    L.push(`  let ar${h} = ${g.gather ? `(perm[sl${h}] / ${u(g.gather.top)})` : `sl${h}`} * ${u(Kd)};`);
  }
  for (let j = 0; j < SN; j++) L.push(`  let c${j} = min(col0 + ${u(j)}, ${u(Nd - 1)});`);
  if (!g.transB && bVec) L.push(`  let cg0 = min(col0, ${u(Nd - 4)});`);
  for (let i = 0; i < SM; i++) L.push(`  var acc${i} = vec4<f32>(0.0);`);
  L.push(`  for (var k = 0u; k < ${u(Kd)}; k += ${u(KU)}) {`);
  for (let h = 0; h < 2; h++) L.push(aVec ? `    let al${h} = A[(ar${h} + k) / 4u];` : `    let al${h} = A[ar${h} + k];`);
  for (let i = 0; i < SM; i++) L.push(`    let a${i} = subgroupBroadcast(al${i >> 3}, ${u(i % 8)});`);
  const aVal = (i: number, kk: number) => (aVec ? `a${i}[${kk}]` : `a${i}`);
  let bv: (kk: number) => string;
  if (!g.transB && bVec) {
    for (let kk = 0; kk < KU; kk++) L.push(`    let b${kk} = B[(bBase + (k + ${u(kk)}) * ${u(Nd)} + cg0) / 4u];`);
    bv = (kk) => `b${kk}`;
  } else if (!g.transB) {
    bv = (kk) => vec4Of([0, 1, 2, 3].map((t) => `B[bBase + (k + ${u(kk)}) * ${u(Nd)} + c${t}]`));
  } else if (bVec) {
    for (let j = 0; j < SN; j++) L.push(`    let b${j} = B[(bBase + c${j} * ${u(Kd)} + k) / 4u];`);
    bv = (kk) => vec4Of([0, 1, 2, 3].map((t) => `b${t}[${kk}]`));
  } else {
    bv = () => vec4Of([0, 1, 2, 3].map((t) => `B[bBase + c${t} * ${u(Kd)} + k]`));
  }
  for (let kk = 0; kk < KU; kk++) {
    L.push(`    let bv${kk} = ${bv(kk)};`);
    for (let i = 0; i < SM; i++) L.push(`    acc${i} = fma(vec4<f32>(${aVal(i, kk)}), bv${kk}, acc${i});`);
  }
  L.push(`  }`);
  for (let i = 0; i < SM; i++) {
    L.push(`  if (row0 + ${u(i)} < hi) {`);
    for (let j = 0; j < SN; j++) {
      L.push(...groupedStore(g, `(row0 + ${u(i)})`, j, `acc${i}[${j}]`));
    }
    L.push(`  }`);
  }
  const wgsl = `enable subgroups;
${declare(decls)}
${act !== 'none' || g.actGrad ? actWgsl : ''}
@compute @workgroup_size(${SW}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  // This workgroup's expert and its 16-slot tile inside that expert (uniform over the workgroup).
  var tile = wid.y;
  var e = ${u(E)};
  for (var x = 0u; x < ${u(E)}; x++) {
    let tiles = (offsets[x + 1u] - offsets[x] + ${u(SM - 1)}) / ${u(SM)};
    if (tile < tiles) { e = x; break; }
    tile -= tiles;
  }
  if (e == ${u(E)}) { return; }
  let hi = offsets[e + 1u];
  let row0 = offsets[e] + tile * ${u(SM)};
  if (row0 >= hi) { return; }
  let col0 = (wid.x * ${u(SW)} + lid.x) * ${u(SN)};
  let bBase = e * ${u(Kd * Nd)};
  let s8 = sid % 8u;
${L.join('\n')}
}
`;
  return {
    ...wgslKernel(name, wgsl, [SW, 1, 1], {
      flops: 2 * rows * Nd * Kd,
      bytes: 4 * (rows * (Kd + Nd * (1 + (g.savePre ? 1 : 0) + (g.actGrad ? 1 : 0))) + E * Kd * Nd),
      workgroups: [ceilDiv(ceilDiv(Nd, SN), SW), tilesY, 1] as [number, number, number],
    }),
    features: ['subgroups'],
  };
}

/**
 * Expert weight gradients in one dispatch: dW[e] += Σ_{slots s of e} A[row(s)]ᵀ · D[s] (dW[e] is
 * k×n), one workgroup per (n tile, k tile, expert), each summing its expert's slots in order, so
 * the result is deterministic. Bindings: A, D, offsets (read), [perm (read)], dW (read_write).
 */
export function groupedWeightGradKernel(name: string, g: { k: number; n: number; experts: number; gather?: { top: number }; rows?: number }): RowKernel {
  const { k: Kd, n: Nd, experts: E } = g;
  const rows = g.rows ?? 0; // slots summed over (for the FLOP count)
  checkDims(name, { k: Kd, n: Nd, experts: E });
  const aVec = Kd % 4 === 0;
  const dVec = Nd % 4 === 0;
  const decls = [`var<storage, read> A: ${arr(aVec)};`, `var<storage, read> D: ${arr(dVec)};`, 'var<storage, read> offsets: array<u32>;'];
  if (g.gather) decls.push('var<storage, read> perm: array<u32>;');
  decls.push('var<storage, read_write> dW: array<f32>;');
  const L: string[] = [];
  if (aVec) for (let h = 0; h < TM / 4; h++) L.push(`  let rg${h} = min(row0 + ${u(4 * h)}, ${u(Kd - 4)});`);
  else for (let i = 0; i < TM; i++) L.push(`  let r${i} = min(row0 + ${u(i)}, ${u(Kd - 1)});`);
  if (dVec) for (let q = 0; q < G; q++) L.push(`  let cg${q} = min(col0 + ${u(4 * q)}, ${u(Nd - 4)});`);
  else for (let j = 0; j < TN; j++) L.push(`  let c${j} = min(col0 + ${u(j)}, ${u(Nd - 1)});`);
  for (let i = 0; i < TM; i++) for (let q = 0; q < G; q++) L.push(`  var acc${i}_${q} = vec4<f32>(0.0);`);
  L.push(`  for (var s = offsets[e]; s < offsets[e + 1u]; s++) {`);
  L.push(`    let a = ${g.gather ? `(perm[s] / ${u(g.gather.top)})` : 's'} * ${u(Kd)};`);
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
${declare(decls)}
@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = wid.z;
  let row0 = wid.y * ${u(TR)} + lid.y * ${u(TM)};
  let col0 = wid.x * ${u(TC)} + lid.x * ${u(TN)};
  if (row0 >= ${u(Kd)} || col0 >= ${u(Nd)}) { return; }
${L.join('\n')}
}
`;
  return wgslKernel(name, wgsl, [WX, WY, 1], { flops: 2 * rows * Kd * Nd, bytes: 4 * (rows * (Kd + Nd) + 2 * E * Kd * Nd), workgroups: [ceilDiv(Nd, TC), ceilDiv(Kd, TR), E] });
}

/** db[e, c] += Σ_{slots s of e} D[s, c], in slot order. Bindings: D, offsets (read), db (read_write, E×n). */
export function groupedBiasGradKernel(name: string, n: number, experts: number, wg = 64): RowKernel {
  checkDims(name, { n, experts, wg });
  const wgsl = `
@group(0) @binding(0) var<storage, read> D: array<f32>;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
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
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: 0, bytes: 8 * experts * n, workgroups: [ceilDiv(n, wg), experts, 1] });
}
