import type { AttentionShape } from '../reference/attention.js';
import { ceilDiv, checkDims } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { type Binding, boundKernel, declarations, read, readWrite } from './definition.js';
import { u } from './wgsl.js';

export type { AttentionShape } from '../reference/attention.js';

// Causal multi-head self-attention over GPT-2's packed qkv (B·T, 3C): row b·T+t holds [q | k | v],
// head h in columns h·hd .. (h+1)·hd of each part. Flash-style: one invocation owns one query (or,
// in the dk/dv pass, one key) row, keeps its vectors in registers (fully unrolled over the head
// dimension) and walks the other side with an online softmax; no T×T buffer exists.
//
// Measured on lavapipe, where invocations are SIMD lanes: the inner loops run to a bound uniform
// over the workgroup and mask the causal part with select(), so the rows all lanes share load at
// one address; 8 rows per workgroup (one SIMD group) and one key per online-softmax step were the
// fastest of the settings tried (4, 8, 16 rows; 1, 2, 4 keys; a noisy shared machine). Tried and
// dropped: tq × tk register tiles with the head dimension as a loop and the output rows as
// accumulators (1.7x slower at hd 64, more at hd 16, and no faster to compile). hd 64 compiles
// slowly on llvmpipe (~15-30 s per kernel) and runs at a fraction of hd 16's GFLOP/s (spills).

export interface AttentionTiling {
  /** Query (or key) rows per workgroup, one per invocation (default 8). */
  rows: number;
  /** Keys per online-softmax step in the forward kernel: one rescale per block (default 1). */
  keyBlock: number;
}

export const defaultAttentionTiling: AttentionTiling = { rows: 8, keyBlock: 1 };


/**
 * A balanced sum: a left-to-right sum of 16 dot products is a 64-deep chain of dependent FMAs per
 * key, and the online softmax leaves little else to overlap it with (about 20% faster at hd 64).
 */
function pairwiseSum(terms: string[]): string {
  if (terms.length === 1) return terms[0]!;
  const half = Math.ceil(terms.length / 2);
  return `(${pairwiseSum(terms.slice(0, half))} + ${pairwiseSum(terms.slice(half))})`;
}

/** Shape-baked indexing helpers shared by the attention kernels (and attention-subgroup.ts). */
export function attentionLayout(s: AttentionShape) {
  const { B, T, heads, headDim: hd } = s;
  checkDims('attention', { B, T, heads, headDim: hd });
  const C = heads * hd;
  // Head rows are read as vec4 when they can be; otherwise as scalars.
  const V = hd % 4 === 0 ? 4 : 1;
  const n = hd / V;
  const ty = V === 4 ? 'vec4<f32>' : 'f32';
  const chunks = Array.from({ length: n }, (_, c) => c);
  return {
    B, T, heads, hd, C, n, ty, chunks,
    /** Offset (in `ty` units) from a k chunk to the matching v chunk. */
    kToV: u(C / V),
    scale: (1 / Math.sqrt(hd)).toExponential(),
    /** Element offset (in `ty` units) of head h's part (0 q, 1 k, 2 v) in packed row `row`. */
    qkvBase: (row: string, part: 0 | 1 | 2) => `(${row}) * ${u((3 * C) / V)} + ${u((part * C) / V)} + h * ${u(n)}`,
    /** Element offset (in `ty` units) of head h in row `row` of a (B·T, C) buffer. */
    rowBase: (row: string) => `(${row}) * ${u(C / V)} + h * ${u(n)}`,
    /** Σ over chunks of a(c)·b(c). */
    dot: (a: (c: number) => string, b: (c: number) => string) =>
      pairwiseSum(chunks.map((c) => (V === 4 ? `dot(${a(c)}, ${b(c)})` : `${a(c)} * ${b(c)}`))),
    zero: V === 4 ? 'vec4<f32>(0.0)' : '0.0',
  };
}

function tilingOf(name: string, t: Partial<AttentionTiling>): AttentionTiling {
  const tiling = { ...defaultAttentionTiling, ...t };
  checkDims(name, { rows: tiling.rows, keyBlock: tiling.keyBlock });
  return tiling;
}

// Every kernel's grid is (row blocks, heads, B); these lines name the invocation's row.
const rowPrologue = (R: number, T: number) => `
  let b = wid.z;
  let h = wid.y;
  let r0 = wid.x * ${u(R)};
  let rRaw = r0 + lid.x;
  let r = min(rRaw, ${u(T - 1)}); // rows past T compute on a copy of the last row and store nothing
  let bRow = b * ${u(T)};`;

/** The three kernels' bindings, shared by the subgroup forms; rows are read as `ty` (vec4 where the head dim allows). */
export const attentionBindings: Readonly<Record<'fwd' | 'dq' | 'dkv', (ty?: string) => Binding[]>> = {
  fwd: (ty = 'f32') => [read('qkv', `array<${ty}>`), readWrite('out', `array<${ty}>`), readWrite('lse')],
  dq: (ty = 'f32') => [read('qkv', `array<${ty}>`), read('out', `array<${ty}>`), read('dout', `array<${ty}>`), read('lse'), readWrite('dqkv', `array<${ty}>`), readWrite('delta')],
  dkv: (ty = 'f32') => [read('qkv', `array<${ty}>`), read('dout', `array<${ty}>`), read('lse'), read('delta'), readWrite('dqkv', `array<${ty}>`)],
};

/** Flops, bytes and grid of the forward, dq and dk/dv kernels (the subgroup forms share them). */
export function attentionCost(s: AttentionShape, kind: 'fwd' | 'dq' | 'dkv', R: number) {
  const { B, T, heads, headDim: hd } = s;
  const C = heads * hd;
  const pairs = (B * heads * T * (T + 1)) / 2;
  const workgroups: [number, number, number] = [ceilDiv(T, R), heads, B];
  if (kind === 'fwd') return { flops: pairs * (4 * hd + 6), bytes: 4 * B * T * (3 * C + C + heads), workgroups };
  if (kind === 'dq') return { flops: pairs * (6 * hd + 6), bytes: 4 * B * T * (3 * C + 3 * C + 2 * heads), workgroups };
  return { flops: pairs * (8 * hd + 6), bytes: 4 * B * T * (3 * C + C + 2 * C + 2 * heads), workgroups };
}

/**
 * Forward: out_t = Σ_{j≤t} softmax_j(scale·q_t·k_j) v_j and lse_t = log Σ_{j≤t} exp(scale·q_t·k_j),
 * with an online softmax over blocks of keys. Bindings: qkv (read, (B·T, 3C)), out (write, (B·T, C)),
 * lse (write, B·heads·T floats, index (b·heads + h)·T + t).
 */
export function attentionForwardKernel(name: string, s: AttentionShape, tilingIn: Partial<AttentionTiling> = {}): RowKernel {
  const L = attentionLayout(s);
  const { T, chunks, ty } = L;
  const { rows: R, keyBlock: KB } = tilingOf(name, tilingIn);
  const keys = Array.from({ length: KB }, (_, kk) => kk);
  const bind = attentionBindings.fwd(ty);
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${R}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${rowPrologue(R, T)}
  let i = r;
  let qBase = ${L.qkvBase('bRow + i', 0)};
${chunks.map((c) => `  let q${c} = qkv[qBase + ${u(c)}] * ${L.scale};`).join('\n')}
${chunks.map((c) => `  var acc${c} = ${L.zero};`).join('\n')}
  var m = -1e30;
  var l = 0.0;
  // Keys 0 .. jEnd-1 cover every row of this block; later keys of a row are masked out.
  let jEnd = min(r0 + ${u(R)}, ${u(T)});
  for (var j = 0u; j < jEnd; j += ${u(KB)}) {
${keys.map((kk) => `    let kb${kk} = ${L.qkvBase(`bRow + min(j + ${u(kk)}, ${u(T - 1)})`, 1)};`).join('\n')}
${keys.map((kk) => `    let s${kk} = select(-1e30, ${L.dot((c) => `q${c}`, (c) => `qkv[kb${kk} + ${u(c)}]`)}, j + ${u(kk)} <= i);`).join('\n')}
    let mNew = max(m, ${keys.length === 1 ? 's0' : keys.slice(1).reduce((e, kk) => `max(${e}, s${kk})`, 's0')});
    let corr = exp(m - mNew);
${keys.map((kk) => `    let p${kk} = exp(s${kk} - mNew);`).join('\n')}
    l = l * corr + ${keys.map((kk) => `p${kk}`).join(' + ')};
    m = mNew;
${chunks.map((c) => `    acc${c} = ${keys.reduce((e, kk) => `fma(${L.ty}(p${kk}), qkv[kb${kk} + ${L.kToV} + ${u(c)}], ${e})`, `acc${c} * corr`)};`).join('\n')}
  }
  if (rRaw < ${u(T)}) {
    let inv = 1.0 / l;
    let oBase = ${L.rowBase('bRow + i')};
${chunks.map((c) => `    out[oBase + ${u(c)}] = acc${c} * inv;`).join('\n')}
    lse[(b * ${u(L.heads)} + h) * ${u(T)} + i] = m + log(l);
  }
}
`;
  return boundKernel(name, bind, wgsl, [R, 1, 1], attentionCost(s, 'fwd', R));
}

/**
 * The backward pass as two dispatches, in order; both write into one dqkv (B·T, 3C), each binding it
 * once. Every element of dqkv is written (not accumulated) by exactly one invocation, so its old
 * contents do not matter and no atomics are needed:
 *  1. dq: parallel over query rows. D_i = dout_i·out_i, then dq_i = scale Σ_{j≤i} ds_ij k_j with
 *     p_ij = exp(scale q_i·k_j − lse_i), ds_ij = p_ij (dout_i·v_j − D_i). Writes the q part of dqkv
 *     and D into `delta`. Bindings: qkv, out, dout, lse (read), dqkv (write), delta (write, B·heads·T
 *     floats, a scratch buffer indexed like lse).
 *  2. dk, dv: parallel over key rows, recomputing p from lse: dv_j = Σ_{i≥j} p_ij dout_i,
 *     dk_j = scale Σ_{i≥j} ds_ij q_i. Writes the k and v parts of dqkv. Bindings: qkv, dout, lse,
 *     delta (read), dqkv (write).
 */
export function attentionBackwardKernels(name: string, s: AttentionShape, tilingIn: Partial<AttentionTiling> = {}): [RowKernel, RowKernel] {
  const L = attentionLayout(s);
  const { T, chunks, ty } = L;
  const { rows: R } = tilingOf(name, tilingIn);
  const kOff = L.kToV;
  const statIndex = (row: string) => `(b * ${u(L.heads)} + h) * ${u(T)} + ${row}`;

  const dqBind = attentionBindings.dq(ty);
  const dkvBind = attentionBindings.dkv(ty);
  const dq = `
${declarations(dqBind)}
@compute @workgroup_size(${R}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${rowPrologue(R, T)}
  let i = r;
  let qBase = ${L.qkvBase('bRow + i', 0)};
  let oBase = ${L.rowBase('bRow + i')};
${chunks.map((c) => `  let q${c} = qkv[qBase + ${u(c)}] * ${L.scale};`).join('\n')}
${chunks.map((c) => `  let do${c} = dout[oBase + ${u(c)}];`).join('\n')}
  let D = ${L.dot((c) => `do${c}`, (c) => `out[oBase + ${u(c)}]`)};
  let lseI = lse[${statIndex('i')}];
${chunks.map((c) => `  var dq${c} = ${L.zero};`).join('\n')}
  let jEnd = min(r0 + ${u(R)}, ${u(T)});
  for (var j = 0u; j < jEnd; j++) {
    let kb = ${L.qkvBase('bRow + j', 1)};
${chunks.map((c) => `    let k${c} = qkv[kb + ${u(c)}];`).join('\n')}
    // Masked (future) scores may overflow exp; select discards them.
    let p = select(0.0, exp(${L.dot((c) => `q${c}`, (c) => `k${c}`)} - lseI), j <= i);
    let ds = p * (${L.dot((c) => `do${c}`, (c) => `qkv[kb + ${kOff} + ${u(c)}]`)} - D);
${chunks.map((c) => `    dq${c} = fma(${ty}(ds), k${c}, dq${c});`).join('\n')}
  }
  if (rRaw < ${u(T)}) {
${chunks.map((c) => `    dqkv[qBase + ${u(c)}] = dq${c} * ${L.scale};`).join('\n')}
    delta[${statIndex('i')}] = D;
  }
}
`;

  const dkv = `
${declarations(dkvBind)}
@compute @workgroup_size(${R}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${rowPrologue(R, T)}
  let j = r;
  let kBase = ${L.qkvBase('bRow + j', 1)};
${chunks.map((c) => `  let k${c} = qkv[kBase + ${u(c)}] * ${L.scale};`).join('\n')}
${chunks.map((c) => `  let v${c} = qkv[kBase + ${kOff} + ${u(c)}];`).join('\n')}
${chunks.map((c) => `  var dk${c} = ${L.zero};\n  var dv${c} = ${L.zero};`).join('\n')}
  // Queries r0 .. T-1 cover every key of this block; earlier queries of a key are masked out.
  for (var i = r0; i < ${u(T)}; i++) {
    let qb = ${L.qkvBase('bRow + i', 0)};
    let ob = ${L.rowBase('bRow + i')};
${chunks.map((c) => `    let q${c} = qkv[qb + ${u(c)}];`).join('\n')}
${chunks.map((c) => `    let do${c} = dout[ob + ${u(c)}];`).join('\n')}
    let p = select(0.0, exp(${L.dot((c) => `q${c}`, (c) => `k${c}`)} - lse[${statIndex('i')}]), i >= j);
    let ds = p * (${L.dot((c) => `do${c}`, (c) => `v${c}`)} - delta[${statIndex('i')}]);
${chunks.map((c) => `    dv${c} = fma(${ty}(p), do${c}, dv${c});\n    dk${c} = fma(${ty}(ds), q${c}, dk${c});`).join('\n')}
  }
  if (rRaw < ${u(T)}) {
${chunks.map((c) => `    dqkv[kBase + ${u(c)}] = dk${c} * ${L.scale};\n    dqkv[kBase + ${kOff} + ${u(c)}] = dv${c};`).join('\n')}
  }
}
`;
  return [
    boundKernel(`${name}_dq`, dqBind, dq, [R, 1, 1], attentionCost(s, 'dq', R)),
    boundKernel(`${name}_dkv`, dkvBind, dkv, [R, 1, 1], attentionCost(s, 'dkv', R)),
  ];
}
