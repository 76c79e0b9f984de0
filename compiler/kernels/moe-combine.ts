import { assignmentWgsl, tokenOfWgsl } from '../routing/slots.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { wgslKernel } from './wgsl-kernel.js';
import { u } from './wgsl.js';


export interface CombineShape {
  tokens: number;
  width: number;
  top: number;
}

/**
 * Combine: out[n, c] = Σ_k gate[n,k] · Y[pos[n,k], c] over the token's kept assignments, k in
 * order (deterministic, no atomics; a dropped assignment adds 0, so the token passes on through the
 * residual alone). Unweighted (`weighted` false) it sums the expert rows: the input gradient of
 * the experts, dx[n] = Σ_k dX[pos[n,k]]. Bindings: Y, [gate], pos (read), out (write).
 */
export function moeCombineKernel(name: string, s: CombineShape, weighted = true, wg = 256): RowKernel {
  const { tokens: N, width: C, top: K } = s;
  checkDims(name, { N, C, K, wg });
  const slots = { top: K };
  const decls = ['var<storage, read> Y: array<f32>;', ...(weighted ? ['var<storage, read> gate: array<f32>;'] : []), 'var<storage, read> pos: array<u32>;', 'var<storage, read_write> out: array<f32>;'];
  const wgsl = `
${decls.map((d, i) => `@group(0) @binding(${i}) ${d}`).join('\n')}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = wid.x * ${u(wg)} + lid.x;
  if (i >= ${u(N * C)}) { return; }
  let n = i / ${u(C)};
  let c = i % ${u(C)};
  var acc = 0.0;
  for (var k = 0u; k < ${u(K)}; k++) {
    let s = pos[${assignmentWgsl(slots, 'n', 'k')}];
    if (s != 0xffffffffu) { acc += ${weighted ? `gate[${assignmentWgsl(slots, 'n', 'k')}] * ` : ''}Y[s * ${u(C)} + c]; }
  }
  out[i] = acc;
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: 2 * N * C * K, bytes: 4 * (N * C * (K + 1) + 2 * N * K), workgroups: [ceilDiv(N * C, wg), 1, 1] });
}

/**
 * Combine backward, one invocation per assignment a = n·K + k: dY[pos[a]] = gate[a] · dout[n] and
 * dgate[a] = dout[n] · Y[pos[a]] (0 for a dropped assignment). Each slot belongs to one assignment,
 * so no two invocations write the same row. Bindings: dout, Y, gate, pos (read), dY, dgate (write).
 */
export function moeCombineBackwardKernel(name: string, s: CombineShape, wg = 64): RowKernel {
  const { tokens: N, width: C, top: K } = s;
  checkDims(name, { N, C, K, wg });
  const wgsl = `
@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> Y: array<f32>;
@group(0) @binding(2) var<storage, read> gate: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<u32>;
@group(0) @binding(4) var<storage, read_write> dY: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgate: array<f32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let a = gid.x;
  if (a >= ${u(N * K)}) { return; }
  let s = pos[a];
  if (s == 0xffffffffu) { dgate[a] = 0.0; return; }
  let n = ${tokenOfWgsl({ top: K }, 'a')};
  let g = gate[a];
  var d = 0.0;
  for (var c = 0u; c < ${u(C)}; c++) {
    let o = dout[n * ${u(C)} + c];
    dY[s * ${u(C)} + c] = g * o;
    d += o * Y[s * ${u(C)} + c];
  }
  dgate[a] = d;
}
`;
  return wgslKernel(name, wgsl, [wg, 1, 1], { flops: 3 * N * K * C, bytes: 4 * (3 * N * K * C + 3 * N * K), workgroups: [ceilDiv(N * K, wg), 1, 1] });
}
