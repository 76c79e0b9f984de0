// Subgroup forms of the grouped expert matmul and its weight gradient (chosen by the lowering for
// adapters with subgroups of at least 8; see subgroupFormsSuit in lower/target.ts). They share the tiled forms'
// bindings, epilogue and column loads (moe-grouped.ts).
import type { GroupedMatmulShape } from '../reference/moe.js';
import { GridLimitError } from './grid-limit.js';
import { tokenOfWgsl } from '../routing/slots.js';
import type { RowKernel } from './layernorm.js';
import {
  actWgsl, arr, groupedBiasGradBindings, groupedBiasGradKernel, groupedBindings, groupedColumns, groupedEpilogue, groupedMatmulKernel, groupedWeightGradKernel, MAX_GROUPS, weightGradBindings, type WeightGradShape,
} from './moe-grouped.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel } from './definition.js';
import { u } from './wgsl.js';


/** Outputs per invocation of groupedMatmulSubgroupKernel: sm slots (8, 16, 24 or 32) by sn columns (4 or 8). */
export interface GroupedMatmulTile {
  sm: number;
  sn: number;
  /** Column blocks (of 8·sn columns) one workgroup walks in turn; default 1. */
  nb?: number;
}

/**
 * The tile groupedMatmulSubgroupKernel uses by default: 16 slots × 4 columns per invocation (as the
 * dense subgroup matmul; 8×4, 24×4, 32×4 and 16×8 were level or slower at the quickstart MoE's
 * shapes). With gathered rows and n spanning at least 4 column blocks of 32 (the c_fc forward),
 * each workgroup walks 4 column blocks in turn: it finds its expert and tile, loads perm and reads
 * its 16 scattered A rows for 4 blocks instead of 1: 1.1-1.3× at the quickstart c_fc forward
 * (n 256, k 64; runtime/bench/ab-builds.ts gmm, both orders) and 1.13× at the 'small' model's
 * (n 1024, k 256). Without the gather (the transposed c_proj dx at n = 256, the n = 64 shapes)
 * walking 2-8 blocks was level or slower, so those kernels are unchanged.
 */
export function groupedMatmulSubgroupTile(g: GroupedMatmulShape): GroupedMatmulTile {
  return { sm: 16, sn: 4, nb: g.gather && ceilDiv(g.n, 32) >= 4 ? 4 : 1 };
}

/**
 * groupedMatmulKernel's subgroup form, for adapters where the dense subgroup matmul was measured
 * faster (kernels/matmul.ts, matmulSubgroupKernel; lowering option subgroupMatmul): a workgroup of
 * 8 invocations owns sm slots of one expert and runs along the columns, sn per invocation; invocation
 * s8 loads the A rows of slots 8h + s8 (gathered through perm) and subgroupBroadcast hands them to
 * all 8. No invocation returns before the loop (the broadcasts need all 8); columns past n are
 * clamped for loads and skipped for stores. Same bindings and results as groupedMatmulKernel.
 */
export function groupedMatmulSubgroupKernel(name: string, g: GroupedMatmulShape, tile: GroupedMatmulTile = groupedMatmulSubgroupTile(g)): RowKernel {
  const { rows, n: Nd, k: Kd, experts: E } = g;
  checkDims(name, { rows, n: Nd, k: Kd, experts: E });
  const { sm: SM, sn: SN } = tile;
  const NB = Math.min(tile.nb ?? 1, ceilDiv(ceilDiv(Nd, SN), 8));
  if (![8, 16, 24, 32].includes(SM) || ![4, 8].includes(SN) || !Number.isInteger(NB) || NB < 1) throw new Error(`${name}: unsupported tile ${SM}×${SN}×${NB}`);
  const SW = 8;
  const NQ = SN / 4; // vec4 accumulators per slot
  const act = g.activation ?? 'none';
  const tilesY = ceilDiv(rows, SM) + E;
  if (tilesY > MAX_GROUPS) throw new GridLimitError(`${name}: ${tilesY} row tiles exceed ${MAX_GROUPS} workgroups`);
  const KU = Kd % 4 === 0 ? 4 : 1;
  const aVec = KU === 4;
  const bVec = g.transB ? KU === 4 : Nd % 4 === 0;
  const b = groupedBindings(g, aVec, bVec, Nd % 4 === 0);
  const P: string[] = [];
  for (let h = 0; h < SM / 8; h++) {
    P.push(`  let sl${h} = min(row0 + ${u(8 * h)} + s8, hi - 1u);`);
    P.push(`  let ar${h} = ${g.gather ? `(${tokenOfWgsl(g.gather, `perm[sl${h}]`)})` : `sl${h}`} * ${u(Kd)};`);
  }
  const L: string[] = [];
  L.push(NB > 1 ? `  let col0 = ((wid.x * ${u(NB)} + cb) * ${u(SW)} + lid.x) * ${u(SN)};` : `  let col0 = (wid.x * ${u(SW)} + lid.x) * ${u(SN)};`);
  const cols = groupedColumns(g, SM, NQ, KU, bVec);
  L.push(...cols.setup);
  L.push(`  for (var k = 0u; k < ${u(Kd)}; k += ${u(KU)}) {`);
  for (let h = 0; h < SM / 8; h++) L.push(aVec ? `    let al${h} = A[(ar${h} + k) / 4u];` : `    let al${h} = A[ar${h} + k];`);
  for (let i = 0; i < SM; i++) L.push(`    let a${i} = subgroupBroadcast(al${i >> 3}, ${u(i % 8)});`);
  L.push(...cols.body((i, kk) => (aVec ? `a${i}[${kk}]` : `a${i}`)));
  L.push(`  }`);
  L.push(...groupedEpilogue(g, Array.from({ length: SM }, (_, i) => ({ guard: `row0 + ${u(i)} < hi`, slot: `(row0 + ${u(i)})`, acc: (q: number) => `acc${i}_${q}` })), NQ));
  const wgsl = `enable subgroups;
${declarations(b)}
${act !== 'none' || g.actGrad ? actWgsl : ''}
@compute @workgroup_size(${SW}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  // This workgroup's expert and its ${SM}-slot tile inside that expert (uniform over the workgroup).
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
  let bBase = e * ${u(Kd * Nd)};
  let s8 = sid % 8u;
${P.join('\n')}
${NB > 1 ? [`  for (var cb = 0u; cb < ${u(NB)}; cb++) {`, ...L.map((l) => `  ${l}`), '  }'].join('\n') : L.join('\n')}
}
`;
  return {
    ...boundKernel(name, b, wgsl, [SW, 1, 1], {
      flops: 2 * rows * Nd * Kd,
      bytes: 4 * (rows * (Kd + Nd * (1 + (g.savePre ? 1 : 0) + (g.actGrad ? 1 : 0))) + E * Kd * Nd),
      workgroups: [ceilDiv(ceilDiv(Nd, SN), SW * NB), tilesY, 1] as [number, number, number],
    }),
    features: ['subgroups'],
  };
}

/** Outputs per invocation of groupedWeightGradSubgroupKernel: sm rows of k (4, 8, 16 or 32) by sn columns (1, 2, 4 or 8). */
export interface WeightGradTile {
  sm: number;
  sn: number;
}

/**
 * groupedWeightGradKernel's subgroup form (used where moe_gmm's is; see groupedMatmulSubgroupKernel):
 * a workgroup of 8 invocations, one subgroup, owns sm rows of dW[e] and runs along the columns, sn per
 * invocation (vector loads of D[s] where n allows). On llvmpipe every storage load with a
 * non-constant address is a loop over the lanes and, for a vector, over its components too, so the
 * floats each lane loads per slot set the speed. Each lane needs its own sn floats of D[s]; the sm
 * values of A[row(s)] are shared: with k a multiple of 4, sm/4 lanes load them as vec4s, so one load
 * serves 32/sm slots (lane j: slot j / (sm/4), rows 4(j mod sm/4) ..), handed round by
 * subgroupBroadcast; otherwise ceil(sm/8) scalar loads per slot. With `gather`, lane j loads
 * perm[s0 + j] once per 8 slots and broadcasts it. Slots go 8 at a time (a broadcast's lane must be
 * a constant), unrolled; in the last, partial group a workgroup-uniform test skips slots past the
 * expert's end. Each output sums its expert's slots in order, as the tiled form does
 * (deterministic). No invocation returns early: rows past k and columns past n are clamped for
 * loads and skipped for stores. 8×4 measured fastest on lavapipe (1.1-1.5× the tiled form,
 * runtime/bench/moe-wgrad-compare.ts); 16×4 and more accumulators spill. Same bindings and
 * results as groupedWeightGradKernel.
 */
export function groupedWeightGradSubgroupKernel(name: string, g: WeightGradShape, tile: WeightGradTile = { sm: 8, sn: 4 }): RowKernel {
  const { k: Kd, n: Nd, experts: E } = g;
  const { sm: SM, sn: SN } = tile;
  const rows = g.rows ?? 0;
  checkDims(name, { k: Kd, n: Nd, experts: E });
  if (![4, 8, 16, 32].includes(SM) || ![1, 2, 4, 8].includes(SN)) throw new Error(`${name}: unsupported tile ${SM}×${SN}`);
  const SW = 8;
  const VW = Math.min(SN, 4); // D columns per vector
  const NQ = SN / VW;
  const vt = VW === 1 ? 'f32' : `vec${VW}<f32>`;
  const aVec = Kd % 4 === 0;
  const dVec = VW > 1 && Nd % VW === 0;
  // With vec4 A loads, GA lanes cover a slot's SM values of A, so one load serves P = 8 / GA slots.
  const GA = SM / 4;
  const P = 8 / GA;
  const b = weightGradBindings(g, arr(aVec), `array<${dVec ? vt : 'f32'}>`);
  const L: string[] = [];
  if (aVec) L.push(`  let ka = min(k0 + (s8 % ${u(GA)}) * 4u, ${u(Kd - 4)});`);
  else for (let h = 0; h < Math.ceil(SM / 8); h++) L.push(`  let ka${h} = min(k0 + ${u(8 * h)} + s8, ${u(Kd - 1)});`);
  if (dVec) for (let q = 0; q < NQ; q++) L.push(`  let cg${q} = min(col0 + ${u(VW * q)}, ${u(Nd - VW)});`);
  else for (let j = 0; j < SN; j++) L.push(`  let c${j} = min(col0 + ${u(j)}, ${u(Nd - 1)});`);
  for (let i = 0; i < SM; i++) for (let q = 0; q < NQ; q++) L.push(`  var acc${i}_${q} = ${vt}(0.0);`);
  const aVal = (i: number) => (aVec ? `a${i >> 2}[${i % 4}]` : `a${i}`);
  // The A row offset of slot s0 + t (lane-uniform), or, for a shared vec4 load, of this lane's slot.
  const rowOf = (t: string) => (g.gather ? `subgroupBroadcast(pr, ${t})` : `(s0 + ${t}) * ${u(Kd)}`);
  // Vec4 A load v: lane j loads slot v·P + j / GA (clamped to the expert), k rows ka .. ka + 3.
  const sharedLoad = (v: number): string[] => {
    let ab = g.gather ? rowOf(u(v * P)) : `min(s0 + ${u(v * P)} + s8 / ${u(GA)}, hi - 1u) * ${u(Kd)}`;
    if (g.gather) for (let h = 1; h < P; h++) ab = `select(${ab}, ${rowOf(u(v * P + h))}, s8 >= ${u(h * GA)})`;
    return [`    let al${v} = A[(${ab} + ka) / 4u];`];
  };
  // One slot, s0 + t: its A values (broadcast), its D columns, SM × SN FMAs.
  const slot = (t: number): string[] => {
    const s = `(s0 + ${u(t)})`;
    const B: string[] = [];
    if (aVec) {
      for (let q = 0; q < GA; q++) B.push(`    let a${q} = subgroupBroadcast(al${Math.floor(t / P)}, ${u((t % P) * GA + q)});`);
    } else {
      B.push(`    let ab = ${rowOf(u(t))};`);
      for (let h = 0; h < Math.ceil(SM / 8); h++) B.push(`    let al${h} = A[ab + ka${h}];`);
      for (let i = 0; i < SM; i++) B.push(`    let a${i} = subgroupBroadcast(al${i >> 3}, ${u(i % 8)});`);
    }
    const dAt = (q: number) => [...Array(VW).keys()].map((x) => `D[${s} * ${u(Nd)} + c${VW * q + x}]`);
    for (let q = 0; q < NQ; q++) B.push(`    let d${q} = ${dVec ? `D[(${s} * ${u(Nd)} + cg${q}) / ${u(VW)}]` : VW === 1 ? dAt(q)[0] : `${vt}(${dAt(q).join(', ')})`};`);
    for (let i = 0; i < SM; i++) for (let q = 0; q < NQ; q++) B.push(`    acc${i}_${q} = fma(${vt}(${aVal(i)}), d${q}, acc${i}_${q});`);
    return ['    {', ...B, '    }'];
  };
  // 8 slots from s0; `guarded`: the last group, where slots ≥ hi are skipped (a workgroup-uniform test).
  const group = (guarded: boolean): string[] => {
    const B = g.gather ? [`    let pr = (${tokenOfWgsl(g.gather, 'perm[min(s0 + s8, hi - 1u)]')}) * ${u(Kd)};`] : [];
    for (let t = 0; t < 8; t++) {
      if (aVec && t % P === 0) B.push(...sharedLoad(t / P));
      B.push(...(guarded && t > 0 ? [`    if (s0 + ${u(t)} < hi) {`, ...slot(t), '    }'] : slot(t)));
    }
    return B;
  };
  L.push('  var s0 = offsets[e];', '  let hi = offsets[e + 1u];');
  L.push('  for (; s0 + 8u <= hi; s0 += 8u) {', ...group(false), '  }');
  L.push('  if (s0 < hi) {', ...group(true), '  }');
  for (let i = 0; i < SM; i++) {
    L.push(`  if (k0 + ${u(i)} < ${u(Kd)}) {`);
    for (let j = 0; j < SN; j++) L.push(`    if (col0 + ${u(j)} < ${u(Nd)}) { dW[e * ${u(Kd * Nd)} + (k0 + ${u(i)}) * ${u(Nd)} + col0 + ${u(j)}] += acc${i}_${Math.floor(j / VW)}${VW === 1 ? '' : `[${j % VW}]`}; }`);
    L.push('  }');
  }
  const wgsl = `enable subgroups;
${declarations(b)}
@compute @workgroup_size(${SW}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  let e = wid.z;
  let k0 = wid.y * ${u(SM)};
  let col0 = (wid.x * ${u(SW)} + lid.x) * ${u(SN)};
  let s8 = sid % 8u;
${L.join('\n')}
}
`;
  return {
    ...boundKernel(name, b, wgsl, [SW, 1, 1], {
      flops: 2 * rows * Kd * Nd,
      bytes: 4 * (rows * (Kd + Nd) + 2 * E * Kd * Nd),
      workgroups: [ceilDiv(ceilDiv(Nd, SN), SW), ceilDiv(Kd, SM), E] as [number, number, number],
    }),
    features: ['subgroups'],
  };
}

// The grouped kernels' definitions, with both forms (here, where both are in reach). A subgroup form
// reads A, B, D as vectors where the portable one may not: the names, order and access agree.
export const moeGroupedMatmul = defineKernel('moe_gmm', (g: GroupedMatmulShape) => groupedBindings(g), {
  portable: (n, g) => groupedMatmulKernel(n, g),
  subgroup: (n, g) => groupedMatmulSubgroupKernel(n, g),
});
export const moeWeightGrad = defineKernel('moe_wgrad', (g: WeightGradShape) => weightGradBindings(g), {
  portable: (n, g) => groupedWeightGradKernel(n, g),
  subgroup: (n, g) => groupedWeightGradSubgroupKernel(n, g),
});
export const moeBiasGrad = defineKernel('moe_bgrad', (_cols: number, _experts: number, _rows: number) => groupedBiasGradBindings(), { portable: groupedBiasGradKernel });
