import { activationWgsl, geluWgsl } from './activation.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, perElementMain, read, readWrite } from './definition.js';
import { entry, grid, u } from './wgsl.js';

// Small memory-bound kernels the training step needs between the big fused ones.

const fillBindings = () => [readWrite('x')];
const geluForwardBindings = () => [read('h'), readWrite('g')];
const geluBackwardBindings = () => [read('h'), readWrite('d')];
const biasGradBindings = () => [read('dy'), readWrite('db')];
const scaleAddBindings = () => [read('x'), readWrite('acc')];
const addBindings = () => [read('a'), read('b'), readWrite('d')];
const evalSumBindings = () => [read('loss'), readWrite('acc')];

export { entry, grid } from './wgsl.js';

/** x[i] = value for i < count. Bindings: x (write). Zeroes gradients at the start of a step. */
export function fillKernel(name: string, count: number, value = 0, wg = 256): RowKernel {
  checkDims(name, { count, wg });
  const g = grid(count, wg);
  const b = fillBindings();
  const wgsl = `
${declarations(b)}
${entry(wg)}
  let i = ${g.idx};
  if (i < ${u(count)}) { x[i] = ${value.toExponential()}; }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 0, bytes: 4 * count, workgroups: g.workgroups });
}

/** g = gelu(h), element-wise (GPT-2's tanh form). Bindings: h (read), g (write). */
export function geluForwardKernel(name: string, count: number, wg = 256): RowKernel {
  checkDims(name, { count, wg });
  const g = grid(count, wg);
  const b = geluForwardBindings();
  const wgsl = `
${declarations(b)}
${activationWgsl}
${entry(wg)}
  let i = ${g.idx};
  if (i < ${u(count)}) { g[i] = gelu(h[i]); }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 12 * count, bytes: 8 * count, workgroups: g.workgroups });
}

/** d[i] *= gelu'(h[i]), in place: turns dL/dgelu(h) into dL/dh. Bindings: h (read), d (read_write). */
export function geluBackwardKernel(name: string, count: number, wg = 256): RowKernel {
  checkDims(name, { count, wg });
  const g = grid(count, wg);
  const b = geluBackwardBindings();
  const wgsl = `
${declarations(b)}
${entry(wg)}
  let i = ${g.idx};
  if (i < ${u(count)}) {
    let x = h[i];
${geluWgsl.gradLines.map((l) => `    ${l}`).join('\n')}
    d[i] *= ${geluWgsl.grad};
  }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: 16 * count, bytes: 12 * count, workgroups: g.workgroups });
}

/**
 * Bias gradient: db[n] += Σ_m dy[m, n], one invocation per column scanning the rows in order, so
 * the sum is deterministic. Bindings: dy (read), db (read_write, +=).
 */
export function biasGradKernel(name: string, rows: number, cols: number, wg = 64): RowKernel {
  checkDims(name, { rows, cols, wg });
  const b = biasGradBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'n', cols)}
  var acc = 0.0;
  for (var m = 0u; m < ${u(rows)}; m++) { acc += dy[m * ${u(cols)} + n]; }
  db[n] += acc;
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: rows * cols, bytes: 4 * (rows * cols + 2 * cols), workgroups: [ceilDiv(cols, wg), 1, 1] });
}

/**
 * acc[i] = acc[i] * keep + x[i] * scale for i < count (one invocation each): sums the loss over
 * micro-batches on the GPU, so a step needs no read-back. Bindings: x (read), acc (read_write).
 */
export function scaleAddKernel(name: string, count: number, scale: number, keep = 1): RowKernel {
  checkDims(name, { count });
  const b = scaleAddBindings();
  const wgsl = `
${declarations(b)}
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < ${u(count)}) { acc[i] = acc[i] * ${keep.toExponential()} + x[i] * ${scale.toExponential()}; }
}
`;
  return boundKernel(name, b, wgsl, [64, 1, 1], { flops: 2 * count, bytes: 12 * count, workgroups: [ceilDiv(count, 64), 1, 1] });
}

/** d[i] = a[i] + b[i]. Bindings: a, b (read), d (write). */
export function addKernel(name: string, count: number, wg = 256): RowKernel {
  checkDims(name, { count, wg });
  const g = grid(count, wg);
  const b = addBindings();
  const wgsl = `
${declarations(b)}
${entry(wg)}
  let i = ${g.idx};
  if (i < ${u(count)}) { d[i] = a[i] + b[i]; }
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: count, bytes: 12 * count, workgroups: g.workgroups });
}

/**
 * Validation accumulator: from the loss kernel's {mean, gradScale/count} recovers the batch's token
 * count and adds {Σ loss, count} into acc, so perplexity over many batches is token-weighted and
 * needs one read-back at the end. Bindings: loss (read, 2 floats), acc (read_write, 2 floats).
 */
export function evalSumKernel(name: string, gradScale: number): RowKernel {
  const b = evalSumBindings();
  const wgsl = `
${declarations(b)}
@compute @workgroup_size(1, 1, 1)
fn main() {
  let count = round(${gradScale.toExponential()} / loss[1]);
  acc[0] += loss[0] * count;
  acc[1] += count;
}
`;
  return boundKernel(name, b, wgsl, [1, 1, 1], { flops: 3, bytes: 16, workgroups: [1, 1, 1] });
}

export const fill = defineKernel('fill', (_count: number) => fillBindings(), { portable: (n, count) => fillKernel(n, count) });
export const geluForward = defineKernel('gelu_fwd', (_count: number) => geluForwardBindings(), { portable: (n, count) => geluForwardKernel(n, count) });
export const geluBackward = defineKernel('gelu_bwd', (_count: number) => geluBackwardBindings(), { portable: (n, count) => geluBackwardKernel(n, count) });
export const biasGrad = defineKernel('bias_grad', (_rows: number, _cols: number) => biasGradBindings(), { portable: (n, rows, cols) => biasGradKernel(n, rows, cols) });
export const scaleAdd = defineKernel('scale_add', (_count: number, _scale: number) => scaleAddBindings(), { portable: (n, count, scale) => scaleAddKernel(n, count, scale) });
export const evalSum = defineKernel('eval_sum', (_gradScale: number) => evalSumBindings(), { portable: (n, gradScale) => evalSumKernel(n, gradScale) });
