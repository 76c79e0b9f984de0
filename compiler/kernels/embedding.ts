import { ceilDiv, checkDims } from './reduce.js';
import type { RowKernel } from './layernorm.js';
import { wgslKernel } from './wgsl-kernel.js';

export interface EmbeddingShape {
  B: number;
  T: number;
  C: number;
  /** Vocabulary rows in wte; token ids must be below V (larger ids are clamped to V-1). */
  V: number;
}

const u = (x: number) => `${x}u`;
const MAX_GROUPS = 65535;

function check(name: string, s: EmbeddingShape): void {
  checkDims(name, { B: s.B, T: s.T, C: s.C, V: s.V });
}

/** out[b,t,c] = wte[tokens[b,t], c] + wpe[t, c]. Bindings: tokens (u32), wte, wpe (read), out (write). */
export function embeddingForwardKernel(name: string, s: EmbeddingShape, wg = 64): RowKernel {
  const { B, T, C, V } = s;
  check(name, s);
  const wgsl = `
@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> wte: array<f32>;
@group(0) @binding(2) var<storage, read> wpe: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = gid.x;
  let bt = wid.y;
  if (c >= ${u(C)}) { return; }
  let tok = min(tokens[bt], ${u(V - 1)});
  let t = bt % ${u(T)};
  out[bt * ${u(C)} + c] = wte[tok * ${u(C)} + c] + wpe[t * ${u(C)} + c];
}
`;
  if (B * T > MAX_GROUPS) throw new Error(`${name}: B*T=${B * T} exceeds ${MAX_GROUPS} workgroups in y`);
  return wgslKernel(name, wgsl, [wg, 1, 1], {
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
  if (V > MAX_GROUPS) throw new Error(`${name}: V=${V} exceeds ${MAX_GROUPS} workgroups in y`);
  const wgsl = `
@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dwte: array<f32>;
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
  return wgslKernel(name, wgsl, [wg, 1, 1], {
    flops: B * T * C,
    bytes: 4 * (V * C * B * T + B * T * C + 2 * V * C),
    workgroups: [ceilDiv(C, wg), V, 1],
  });
}

/** dwpe[t, c] += Σ_b dout[b, t, c], one invocation per (position, channel). Bindings: dout (read), dwpe (+=). */
export function embeddingBackwardWpeKernel(name: string, s: EmbeddingShape, wg = 64): RowKernel {
  const { B, T, C } = s;
  check(name, s);
  if (T > MAX_GROUPS) throw new Error(`${name}: T=${T} exceeds ${MAX_GROUPS} workgroups in y`);
  const wgsl = `
@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> dwpe: array<f32>;
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
  return wgslKernel(name, wgsl, [wg, 1, 1], {
    flops: B * T * C,
    bytes: 4 * (B * T * C + 2 * T * C),
    workgroups: [ceilDiv(C, wg), T, 1],
  });
}
