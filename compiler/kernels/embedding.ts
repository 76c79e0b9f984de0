import { ceilDiv, checkDims } from './reduce.js';
import { GridLimitError } from './grid-limit.js';
import type { RowKernel } from './layernorm.js';
import { boundKernel, declarations, defineKernel, read, readWrite } from './definition.js';
import { MAX_GROUPS, u } from './wgsl.js';

export interface EmbeddingShape {
  B: number;
  T: number;
  C: number;
  /** Vocabulary rows in wte; token ids must be below V (larger ids are clamped to V-1). */
  V: number;
  /**
   * wte is bound as rows [v0, v0 + rows) only (a vocabulary too large for one binding, see
   * graph/lm-head.ts vocabParts): the forward writes the positions whose token is in the part, the
   * backward adds into the part's rows. One dispatch per part covers the vocabulary.
   */
  part?: { v0: number; rows: number };
}

const forwardBindings = () => [read('tokens', 'array<u32>'), read('wte'), read('wpe'), readWrite('out')];
/** The row form reads dout and dwte as vec4 where C allows. */
const wteGradBindings = (t = 'array<f32>') => [read('tokens', 'array<u32>'), read('dout', t), readWrite('dwte', t)];
const wpeGradBindings = () => [read('dout'), readWrite('dwpe')];

function check(name: string, s: EmbeddingShape): void {
  checkDims(name, { B: s.B, T: s.T, C: s.C, V: s.V });
}

/** out[b,t,c] = wte[tokens[b,t], c] + wpe[t, c]. Bindings: tokens (u32), wte, wpe (read), out (write). */
export function embeddingForwardKernel(name: string, s: EmbeddingShape, wg = 64): RowKernel {
  const { B, T, C, V } = s;
  check(name, s);
  const bind = forwardBindings();
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = gid.x;
  let bt = wid.y;
  if (c >= ${u(C)}) { return; }
  let tok = min(tokens[bt], ${u(V - 1)});
  let t = bt % ${u(T)};
${s.part ? `  if (tok < ${u(s.part.v0)} || tok >= ${u(s.part.v0 + s.part.rows)}) { return; }
  out[bt * ${u(C)} + c] = wte[(tok - ${u(s.part.v0)}) * ${u(C)} + c] + wpe[t * ${u(C)} + c];` : `  out[bt * ${u(C)} + c] = wte[tok * ${u(C)} + c] + wpe[t * ${u(C)} + c];`}
}
`;
  if (B * T > MAX_GROUPS) throw new GridLimitError(`${name}: B*T=${B * T} exceeds ${MAX_GROUPS} workgroups in y`);
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: B * T * C,
    bytes: 4 * (B * T + 3 * B * T * C),
    workgroups: [ceilDiv(C, wg), B * T, 1],
  });
}

/**
 * dwte[v, c] += Σ over positions holding token v of dout[bt, c]: one invocation per (vocab row,
 * channel) scanning all B·T tokens, so the sum is deterministic and needs no atomics or sort. The
 * work is V·B·T token reads, fine for small vocabularies; GPT-2's 50257 rows want a sorted or
 * bucketed variant later. Bindings: tokens (u32), dout (read), dwte (read_write, +=).
 */
export function embeddingBackwardWteKernel(name: string, s: EmbeddingShape, wg = 64): RowKernel {
  const { B, T, C, V } = s;
  check(name, s);
  if (V > MAX_GROUPS) throw new GridLimitError(`${name}: V=${V} exceeds ${MAX_GROUPS} workgroups in y`);
  const bind = wteGradBindings();
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = gid.x;
  let v = wid.y;
  if (c >= ${u(C)}) { return; }
  var acc = 0.0;
  for (var bt = 0u; bt < ${u(B * T)}; bt++) {
    if (min(tokens[bt], ${u(V - 1)}) == v) { acc += dout[bt * ${u(C)} + c]; }
  }
  dwte[v * ${u(C)} + c] += acc;
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: B * T * C,
    bytes: 4 * (V * C * B * T + B * T * C + 2 * V * C),
    workgroups: [ceilDiv(C, wg), V, 1],
  });
}

/**
 * The same dwte += Σ as embeddingBackwardWteKernel, organised by vocabulary row: one invocation per
 * (vocab row v, chunk of up to `chunk` channels) scans the B·T token ids once and, for each position
 * holding v, adds that position's dout chunk into dwte[v] in place (vec4 when C % 4 == 0). Each
 * element is owned by one invocation and summed in position order, so it is deterministic with no
 * atomics, and the token ids are read V·⌈C/chunk⌉·B·T times instead of V·C·B·T. Lanes of a SIMD
 * group are neighbouring vocab rows, which share each token load. Bindings as embeddingBackwardWteKernel.
 */
export function embeddingBackwardWteRowsKernel(name: string, s: EmbeddingShape, wg = 64, chunk = 256): RowKernel {
  const { B, T, C, V } = s;
  check(name, s);
  checkDims(name, { wg, chunk });
  // With a part, invocation v owns row v0 + v of the vocabulary (row v of the bound part).
  const v0 = s.part?.v0 ?? 0;
  const Vr = s.part?.rows ?? V;
  const vec = C % 4 === 0;
  const n = vec ? C / 4 : C; // elements per row
  const ch = Math.min(n, vec ? Math.max(1, Math.floor(chunk / 4)) : chunk); // elements per chunk
  const chunks = ceilDiv(n, ch);
  if (ceilDiv(Vr, wg) > MAX_GROUPS) throw new GridLimitError(`${name}: V=${Vr} needs more than ${MAX_GROUPS} workgroups in x`);
  if (chunks > MAX_GROUPS) throw new GridLimitError(`${name}: ${chunks} channel chunks exceed ${MAX_GROUPS} workgroups in y`);
  const TY = vec ? 'vec4<f32>' : 'f32';
  const bind = wteGradBindings(`array<${TY}>`);
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let v = gid.x;
  if (v >= ${u(Vr)}) { return; }
  let c0 = gid.y * ${u(ch)};
  let c1 = min(c0 + ${u(ch)}, ${u(n)});
  let dst = v * ${u(n)};
  for (var bt = 0u; bt < ${u(B * T)}; bt++) {
    if (min(tokens[bt], ${u(V - 1)}) == ${s.part ? `v + ${u(v0)}` : 'v'}) {
      let src = bt * ${u(n)};
      for (var c = c0; c < c1; c++) { dwte[dst + c] += dout[src + c]; }
    }
  }
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: B * T * C,
    bytes: 4 * (Vr * chunks * B * T + B * T * C + 2 * Vr * C),
    workgroups: [ceilDiv(Vr, wg), chunks, 1],
  });
}

/** dwpe[t, c] += Σ_b dout[b, t, c], one invocation per (position, channel). Bindings: dout (read), dwpe (+=). */
export function embeddingBackwardWpeKernel(name: string, s: EmbeddingShape, wg = 64): RowKernel {
  const { B, T, C } = s;
  check(name, s);
  if (T > MAX_GROUPS) throw new GridLimitError(`${name}: T=${T} exceeds ${MAX_GROUPS} workgroups in y`);
  const bind = wpeGradBindings();
  const wgsl = `
${declarations(bind)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = gid.x;
  let t = wid.y;
  if (c >= ${u(C)}) { return; }
  var acc = 0.0;
  for (var b = 0u; b < ${u(B)}; b++) { acc += dout[(b * ${u(T)} + t) * ${u(C)} + c]; }
  dwpe[t * ${u(C)} + c] += acc;
}
`;
  return boundKernel(name, bind, wgsl, [wg, 1, 1], {
    flops: B * T * C,
    bytes: 4 * (B * T * C + 2 * T * C),
    workgroups: [ceilDiv(C, wg), T, 1],
  });
}

export const embeddingForward = defineKernel('emb_fwd', (_s: EmbeddingShape) => forwardBindings(), { portable: (n, s) => embeddingForwardKernel(n, s) });
export const embeddingWteGrad = defineKernel('emb_dwte', (_s: EmbeddingShape) => wteGradBindings(), { portable: (n, s) => embeddingBackwardWteRowsKernel(n, s) });
export const embeddingWpeGrad = defineKernel('emb_dwpe', (_s: EmbeddingShape) => wpeGradBindings(), { portable: (n, s) => embeddingBackwardWpeKernel(n, s) });
