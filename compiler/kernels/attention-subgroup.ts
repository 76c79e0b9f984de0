import { attentionBackwardKernels, attentionBindings, attentionCost, attentionForwardKernel, attentionLayout, type AttentionShape } from './attention.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, declarations, defineKernel } from './definition.js';
import { u } from './wgsl.js';

// Subgroup forms of the three attention kernels (attention.ts), for lavapipe: the same bindings,
// grid shape and results. In the plain forms the 8 invocations of a workgroup (llvmpipe's 8 SIMD
// lanes) own 8 query (or key) rows and all load the same key (or query) row at each step; llvmpipe
// emits every storage load whose address is not a constant as a loop over the lanes
// (docs/PERFORMANCE.md, "Why the matmul is slow on lavapipe"), so each key cost 8 lanes × hd/4 vec4
// loads for k and as many for v. Here a workgroup is exactly one subgroup of 8, the walk goes by
// blocks of 8 rows, lane s loads row (block start + s) and subgroupBroadcast (an extract and a splat
// on llvmpipe) hands every row to every lane: 8× fewer loads. Each lane owns `rowsPerLane` rows, so
// one broadcast serves them all, and a block is processed one head-dim chunk at a time (the chunk's
// dot products added into the 8 keys' sums, then the updates, broadcasting the chunk again), which
// keeps few values live: with whole rows broadcast per key, 2 rows per lane spilled and compiled for
// minutes at hd 64. Loop bounds are workgroup-uniform and rows past T are clamped, never skipped, so
// all 8 lanes reach every broadcast; the causal (and past-T) part of a block is masked with select()
// as in the plain forms; the forward does one online-softmax rescale per block of 8 keys. Needs the
// 'subgroups' feature with subgroups of at least 8. Measured in runtime/bench/attention-compare.ts.


/**
 * Rows each lane owns. 2 ran at 1.1-1.5× 1 row at hd 16, 32 and 64; 4 was level with 2 at hd 16 and
 * 1.1-1.2× at hd 32, but took llvmpipe 74 s instead of ~10 s to compile the hd 32 kernels.
 */
export const subgroupRowsPerLane = 2;

const R = 8;
const lanes = Array.from({ length: R }, (_, s) => s);
const bc = (x: string, kk: number) => `subgroupBroadcast(${x}, ${u(kk)})`;
const statIndex = (L: { heads: number; T: number }, row: string) => `(b * ${u(L.heads)} + h) * ${u(L.T)} + ${row}`;

/** Shared WGSL pieces: the entry point and the invocation's rows (lane s owns rows r0 + 8t + s). */
function frame(s: AttentionShape, rowsPerLane: number) {
  const L = attentionLayout(s);
  const rows = Array.from({ length: rowsPerLane }, (_, t) => t);
  const W = R * rowsPerLane;
  const dot1 = (a: string, b: string) => (L.ty === 'f32' ? `${a} * ${b}` : `dot(${a}, ${b})`);
  /** One line per (row t, key or query kk of the block). */
  const perPair = (f: (t: number, kk: number) => string) => lanes.map((kk) => rows.map((t) => f(t, kk)).join('\n')).join('\n');
  const prologue = `@compute @workgroup_size(${R}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  let b = wid.z;
  let h = wid.y;
  let r0 = wid.x * ${u(W)};
  let bRow = b * ${u(L.T)};
  // Rows past T compute on a copy of the last row and store nothing.
${rows.map((t) => `  let rRaw${t} = r0 + ${u(R * t)} + lid.x;\n  let row${t} = min(rRaw${t}, ${u(L.T - 1)});`).join('\n')}`;
  return { L, rows, W, dot1, perPair, prologue };
}

const kernelSource = (bindings: string, prologue: string, body: string) => `enable subgroups;\n${bindings}\n${prologue}\n${body}}\n`;

/** attentionForwardKernel's subgroup form (bindings qkv, out, lse). */
export function attentionForwardSubgroupKernel(name: string, s: AttentionShape, rowsPerLane = subgroupRowsPerLane): RowKernel {
  const { L, rows, W, dot1, perPair, prologue } = frame(s, rowsPerLane);
  const { T, chunks, ty } = L;
  const body = `${rows.map((t) => `  let qBase${t} = ${L.qkvBase(`bRow + row${t}`, 0)};
${chunks.map((c) => `  let q${t}_${c} = qkv[qBase${t} + ${u(c)}] * ${L.scale};`).join('\n')}
${chunks.map((c) => `  var acc${t}_${c} = ${L.zero};`).join('\n')}
  var m${t} = -1e30;
  var l${t} = 0.0;`).join('\n')}
  let jEnd = min(r0 + ${u(W)}, ${u(T)});
  for (var j0 = 0u; j0 < jEnd; j0 += ${u(R)}) {
    // This lane loads key row j0 + sid; key j0 + kk comes from lane kk.
    let kb = ${L.qkvBase(`bRow + min(j0 + sid, ${u(T - 1)})`, 1)};
${perPair((t, kk) => `    var s${t}_${kk} = 0.0;`)}
${chunks.map((c) => `    {
      let kl = qkv[kb + ${u(c)}];
${lanes.map((kk) => `      let k${kk} = ${bc('kl', kk)};\n${rows.map((t) => `      s${t}_${kk} += ${dot1(`q${t}_${c}`, `k${kk}`)};`).join('\n')}`).join('\n')}
    }`).join('\n')}
${perPair((t, kk) => `    s${t}_${kk} = select(-1e30, s${t}_${kk}, j0 + ${u(kk)} <= row${t});`)}
${rows.map((t) => `    let mNew${t} = max(m${t}, ${lanes.slice(1).reduce((e, kk) => `max(${e}, s${t}_${kk})`, `s${t}_0`)});
    let corr${t} = exp(m${t} - mNew${t});
${lanes.map((kk) => `    let p${t}_${kk} = exp(s${t}_${kk} - mNew${t});`).join('\n')}
    l${t} = l${t} * corr${t} + ${lanes.map((kk) => `p${t}_${kk}`).join(' + ')};
    m${t} = mNew${t};
${chunks.map((c) => `    acc${t}_${c} *= corr${t};`).join('\n')}`).join('\n')}
${chunks.map((c) => `    {
      let vl = qkv[kb + ${L.kToV} + ${u(c)}];
${lanes.map((kk) => `      let v${kk} = ${bc('vl', kk)};\n${rows.map((t) => `      acc${t}_${c} = fma(${ty}(p${t}_${kk}), v${kk}, acc${t}_${c});`).join('\n')}`).join('\n')}
    }`).join('\n')}
  }
${rows.map((t) => `  if (rRaw${t} < ${u(T)}) {
    let inv = 1.0 / l${t};
    let oBase = ${L.rowBase(`bRow + row${t}`)};
${chunks.map((c) => `    out[oBase + ${u(c)}] = acc${t}_${c} * inv;`).join('\n')}
    lse[${statIndex(L, `row${t}`)}] = m${t} + log(l${t});
  }`).join('\n')}
`;
  const bind = attentionBindings.fwd(ty);
  return boundKernel(name, bind, kernelSource(declarations(bind), prologue, body), [R, 1, 1], { ...attentionCost(s, 'fwd', W), features: ['subgroups'] });
}

/** attentionBackwardKernels' subgroup forms, [dq, dk/dv], with the same bindings. */
export function attentionBackwardSubgroupKernels(name: string, s: AttentionShape, rowsPerLane = subgroupRowsPerLane): [RowKernel, RowKernel] {
  const { L, rows, W, dot1, perPair, prologue } = frame(s, rowsPerLane);
  const { T, chunks, ty } = L;
  const kOff = L.kToV;

  // dq: per block of 8 keys, the scores q·k and dout·v one chunk at a time, then ds, then
  // dq += ds k (each k chunk broadcast a second time rather than kept for all 8 keys).
  const dqBody = `${rows.map((t) => `  let qBase${t} = ${L.qkvBase(`bRow + row${t}`, 0)};
  let oBase${t} = ${L.rowBase(`bRow + row${t}`)};
${chunks.map((c) => `  let q${t}_${c} = qkv[qBase${t} + ${u(c)}] * ${L.scale};`).join('\n')}
${chunks.map((c) => `  let do${t}_${c} = dout[oBase${t} + ${u(c)}];`).join('\n')}
  let D${t} = ${L.dot((c) => `do${t}_${c}`, (c) => `out[oBase${t} + ${u(c)}]`)};
  let lse${t} = lse[${statIndex(L, `row${t}`)}];
${chunks.map((c) => `  var dq${t}_${c} = ${L.zero};`).join('\n')}`).join('\n')}
  let jEnd = min(r0 + ${u(W)}, ${u(T)});
  for (var j0 = 0u; j0 < jEnd; j0 += ${u(R)}) {
    // This lane loads key row j0 + sid; key j0 + kk comes from lane kk.
    let kb = ${L.qkvBase(`bRow + min(j0 + sid, ${u(T - 1)})`, 1)};
${chunks.map((c) => `    let kl${c} = qkv[kb + ${u(c)}];`).join('\n')}
${perPair((t, kk) => `    var sqk${t}_${kk} = 0.0;\n    var sdv${t}_${kk} = 0.0;`)}
${chunks.map((c) => `    {
      let vl = qkv[kb + ${kOff} + ${u(c)}];
${lanes.map((kk) => `      let k${kk} = ${bc(`kl${c}`, kk)};\n      let v${kk} = ${bc('vl', kk)};\n${rows.map((t) => `      sqk${t}_${kk} += ${dot1(`q${t}_${c}`, `k${kk}`)};\n      sdv${t}_${kk} += ${dot1(`do${t}_${c}`, `v${kk}`)};`).join('\n')}`).join('\n')}
    }`).join('\n')}
    // Masked (future) scores may overflow exp; select discards them.
${perPair((t, kk) => `    let ds${t}_${kk} = select(0.0, exp(sqk${t}_${kk} - lse${t}), j0 + ${u(kk)} <= row${t}) * (sdv${t}_${kk} - D${t});`)}
${chunks.map((c) => `    {
${lanes.map((kk) => `      let k${kk} = ${bc(`kl${c}`, kk)};\n${rows.map((t) => `      dq${t}_${c} = fma(${ty}(ds${t}_${kk}), k${kk}, dq${t}_${c});`).join('\n')}`).join('\n')}
    }`).join('\n')}
  }
${rows.map((t) => `  if (rRaw${t} < ${u(T)}) {
${chunks.map((c) => `    dqkv[qBase${t} + ${u(c)}] = dq${t}_${c} * ${L.scale};`).join('\n')}
    delta[${statIndex(L, `row${t}`)}] = D${t};
  }`).join('\n')}
`;

  // dk, dv: per block of 8 queries (q, dout, lse, delta loaded by lane kk), the same order.
  const dkvBody = `${rows.map((t) => `  let kBase${t} = ${L.qkvBase(`bRow + row${t}`, 1)};
${chunks.map((c) => `  let k${t}_${c} = qkv[kBase${t} + ${u(c)}] * ${L.scale};`).join('\n')}
${chunks.map((c) => `  let v${t}_${c} = qkv[kBase${t} + ${kOff} + ${u(c)}];`).join('\n')}
${chunks.map((c) => `  var dk${t}_${c} = ${L.zero};\n  var dv${t}_${c} = ${L.zero};`).join('\n')}`).join('\n')}
  // Queries r0 .. T-1 cover every key of this block; earlier queries of a key are masked out.
  for (var i0 = r0; i0 < ${u(T)}; i0 += ${u(R)}) {
    // This lane loads query row i0 + sid; query i0 + kk comes from lane kk.
    let iL = min(i0 + sid, ${u(T - 1)});
    let qb = ${L.qkvBase('bRow + iL', 0)};
    let ob = ${L.rowBase('bRow + iL')};
${chunks.map((c) => `    let ql${c} = qkv[qb + ${u(c)}];`).join('\n')}
${chunks.map((c) => `    let dol${c} = dout[ob + ${u(c)}];`).join('\n')}
    let lseL = lse[${statIndex(L, 'iL')}];
    let deltaL = delta[${statIndex(L, 'iL')}];
${perPair((t, kk) => `    var sqk${t}_${kk} = 0.0;\n    var sdv${t}_${kk} = 0.0;`)}
${chunks.map((c) => `    {
${lanes.map((kk) => `      let q${kk} = ${bc(`ql${c}`, kk)};\n      let do${kk} = ${bc(`dol${c}`, kk)};\n${rows.map((t) => `      sqk${t}_${kk} += ${dot1(`q${kk}`, `k${t}_${c}`)};\n      sdv${t}_${kk} += ${dot1(`do${kk}`, `v${t}_${c}`)};`).join('\n')}`).join('\n')}
    }`).join('\n')}
${lanes.map((kk) => `    let lse${kk} = ${bc('lseL', kk)};\n    let delta${kk} = ${bc('deltaL', kk)};`).join('\n')}
${perPair((t, kk) => `    let p${t}_${kk} = select(0.0, exp(sqk${t}_${kk} - lse${kk}), i0 + ${u(kk)} >= row${t} && i0 + ${u(kk)} < ${u(T)});\n    let ds${t}_${kk} = p${t}_${kk} * (sdv${t}_${kk} - delta${kk});`)}
${chunks.map((c) => `    {
${lanes.map((kk) => `      let q${kk} = ${bc(`ql${c}`, kk)};\n      let do${kk} = ${bc(`dol${c}`, kk)};\n${rows.map((t) => `      dv${t}_${c} = fma(${ty}(p${t}_${kk}), do${kk}, dv${t}_${c});\n      dk${t}_${c} = fma(${ty}(ds${t}_${kk}), q${kk}, dk${t}_${c});`).join('\n')}`).join('\n')}
    }`).join('\n')}
  }
${rows.map((t) => `  if (rRaw${t} < ${u(T)}) {
${chunks.map((c) => `    dqkv[kBase${t} + ${u(c)}] = dk${t}_${c} * ${L.scale};\n    dqkv[kBase${t} + ${kOff} + ${u(c)}] = dv${t}_${c};`).join('\n')}
  }`).join('\n')}
`;
  const dqBind = attentionBindings.dq(ty);
  const dkvBind = attentionBindings.dkv(ty);
  return [
    boundKernel(`${name}_dq`, dqBind, kernelSource(declarations(dqBind), prologue, dqBody), [R, 1, 1], { ...attentionCost(s, 'dq', W), features: ['subgroups'] }),
    boundKernel(`${name}_dkv`, dkvBind, kernelSource(declarations(dkvBind), prologue, dkvBody), [R, 1, 1], { ...attentionCost(s, 'dkv', W), features: ['subgroups'] }),
  ];
}

// The attention ops with both forms (here, since this module already imports the plain one).
export const attentionForward = defineKernel('attn_fwd', (_s: AttentionShape) => attentionBindings.fwd(), {
  portable: (n, s) => attentionForwardKernel(n, s),
  subgroup: (n, s) => attentionForwardSubgroupKernel(n, s),
});
export const attentionBackwardDq = defineKernel('attn_bwd_dq', (_s: AttentionShape) => attentionBindings.dq(), {
  portable: (n, s) => attentionBackwardKernels(n, s)[0],
  subgroup: (n, s) => attentionBackwardSubgroupKernels(n, s)[0],
});
export const attentionBackwardDkv = defineKernel('attn_bwd_dkv', (_s: AttentionShape) => attentionBindings.dkv(), {
  portable: (n, s) => attentionBackwardKernels(n, s)[1],
  subgroup: (n, s) => attentionBackwardSubgroupKernels(n, s)[1],
});
