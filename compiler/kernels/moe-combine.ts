import { assignmentWgsl, tokenOfWgsl } from '../routing/slots.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, perElementMain, read, readWrite } from './definition.js';
import { u } from './wgsl.js';

export interface CombineShape {
  tokens: number;
  width: number;
  top: number;
}

const combineBindings = (_s: CombineShape, weighted = true) => [read('Y'), ...(weighted ? [read('gate')] : []), read('pos', 'array<u32>'), readWrite('out')];
const combineBackwardBindings = () => [read('dout'), read('Y'), read('gate'), read('pos', 'array<u32>'), readWrite('dY'), readWrite('dgate')];

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
  const b = combineBindings(s, weighted);
  const wgsl = `
${declarations(b)}
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
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 2 * N * C * K, bytes: 4 * (N * C * (K + 1) + 2 * N * K), workgroups: [ceilDiv(N * C, wg), 1, 1] });
}

/**
 * Combine backward, one invocation per assignment a = n·K + k: dY[pos[a]] = gate[a] · dout[n] and
 * dgate[a] = dout[n] · Y[pos[a]] (0 for a dropped assignment). Each slot belongs to one assignment,
 * so no two invocations write the same row. Bindings: dout, Y, gate, pos (read), dY, dgate (write).
 */
export function moeCombineBackwardKernel(name: string, s: CombineShape, wg = 64): RowKernel {
  const { tokens: N, width: C, top: K } = s;
  checkDims(name, { N, C, K, wg });
  const b = combineBackwardBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'a', N * K)}
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
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 3 * N * K * C, bytes: 4 * (3 * N * K * C + 3 * N * K), workgroups: [ceilDiv(N * K, wg), 1, 1] });
}

export const moeCombine = defineKernel('moe_combine', combineBindings, { portable: moeCombineKernel });
export const moeCombineBackward = defineKernel('moe_combine_bwd', (_s: CombineShape) => combineBackwardBindings(), { portable: (n, s) => moeCombineBackwardKernel(n, s) });
