import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bindingsOf } from '../../compiler/kernels/wgsl-kernel.js';
import { matmulKernel } from '../../compiler/kernels/matmul.js';

test('bindings are read off the WGSL declarations, in binding order', () => {
  const wgsl = `
@group(0) @binding(2) var<uniform> step: Step;
@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<vec4<f32>>;`;
  assert.deepEqual(bindingsOf(wgsl), [
    { binding: 0, name: 'params', type: 'storage' },
    { binding: 1, name: 'grads', type: 'read-only-storage' },
    { binding: 2, name: 'step', type: 'uniform' },
  ]);
  assert.deepEqual(bindingsOf(matmulKernel('mm', { m: 3, n: 5, k: 7, bias: true }).wgsl).map((b) => `${b.name}:${b.type}`), [
    'A:read-only-storage',
    'B:read-only-storage',
    'C:storage',
    'bias:read-only-storage',
  ]);
});
