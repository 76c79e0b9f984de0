import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../../compiler/graph/ir.js';
import { bindingOfDeclaration, boundKernel, declarations, read, readWrite, uniform } from '../../../compiler/kernels/definition.js';
import { moeCombine, moeCombineBackward } from '../../../compiler/kernels/moe-combine.js';
import { moeDispatch } from '../../../compiler/kernels/moe-dispatch.js';
import { moeBiasGrad, moeGroupedMatmul, moeWeightGrad } from '../../../compiler/kernels/moe-grouped-subgroup.js';
import { moeRouterNoise } from '../../../compiler/kernels/moe-noise.js';
import { moePoolBackward, moePoolForward } from '../../../compiler/kernels/moe-pool.js';
import { moeAuxLoss, moeRouterBackward } from '../../../compiler/kernels/moe-router.js';
import { moeSoftCombine, moeSoftCombineBackward, moeSoftDispatch, moeSoftDispatchBackward, moeSoftStats, moeSoftWeights } from '../../../compiler/kernels/moe-soft.js';
import { moeCosineBackwardEmb, moeCosineBackwardP, moeCosineBackwardScale, moeCosineForward } from '../../../compiler/kernels/moe-cosine.js';
import { bindingsOf } from '../../../compiler/kernels/wgsl-kernel.js';
import type { KernelDefinition } from '../../../compiler/kernels/definition.js';
import { routerForward } from '../../../compiler/routing/index.js';

const pool = { tokens: 12, seqLen: 4, width: 6, prefix: 3 };

function graph(...names: string[]): Graph {
  const g = new Graph('t');
  for (const n of names) g.tensor(n, [4], 'activation');
  return g;
}

test('an op binds buffers by name and gets them in the kernel binding order', () => {
  const g = graph('x', 'p');
  g.op('forward', 'pool', moePoolForward, [pool], { pooled: 'p', x: 'x' });
  assert.deepEqual(g.ops[0]!.bind, ['x', 'p']);
  assert.equal(g.ops[0]!.kernel.kind, 'moe_pool_fwd');
});

test('a wrong binding name is an error when the op is added', () => {
  const g = graph('x', 'p');
  assert.throws(() => g.op('forward', 'h0.moe.pool', moePoolForward, [pool], { x: 'x', pooledd: 'p' }), /op 'h0\.moe\.pool' binds 2 buffers to kernel 'moe_pool_fwd', whose bindings are x, pooled \(2\): unknown 'pooledd'; missing 'pooled'/);
  assert.equal(g.ops.length, 0);
});

test('too few or too many bindings are errors when the op is added', () => {
  const g = graph('x', 'p', 'q');
  assert.throws(() => g.op('forward', 'pool', moePoolForward, [pool], { x: 'x' }), /binds 1 buffers .*\(2\): missing 'pooled'/);
  assert.throws(() => g.op('forward', 'pool', moePoolForward, [pool], { x: 'x', pooled: 'p', extra: 'q' }), /binds 3 buffers .*\(2\): unknown 'extra'/);
  // Bindings that depend on the arguments: the unweighted combine has no gate.
  const combine = { tokens: 4, width: 3, top: 2 };
  assert.throws(() => g.op('backward', 'unpermute', moeCombine, [combine, false], { Y: 'x', gate: 'p', pos: 'q', out: 'x' }), /unknown 'gate'/);
  g.op('backward', 'unpermute', moeCombine, [combine, false], { Y: 'x', pos: 'q', out: 'p' });
  assert.deepEqual(g.ops[0]!.bind, ['x', 'q', 'p']);
});

test('a by-name binding still refuses a tensor the graph does not have', () => {
  const g = graph('x');
  assert.throws(() => g.op('forward', 'pool', moePoolForward, [pool], { x: 'x', pooled: 'nope' }), /binds unknown tensor 'nope'/);
});

test('declarations are emitted from the bindings, and a kernel whose WGSL lacks them is refused', () => {
  const b = [read('x'), readWrite('idx', 'array<u32>'), uniform('rng', 'Rng')];
  assert.equal(declarations(b), [
    '@group(0) @binding(0) var<storage, read> x: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> idx: array<u32>;',
    '@group(0) @binding(2) var<uniform> rng: Rng;',
  ].join('\n'));
  const k = boundKernel('k', b, `${declarations(b)}\nfn main() {}`, [1, 1, 1], {});
  assert.deepEqual(k.bindings, [
    { binding: 0, name: 'x', type: 'read-only-storage' },
    { binding: 1, name: 'idx', type: 'storage' },
    { binding: 2, name: 'rng', type: 'uniform' },
  ]);
  const drifted = '@group(0) @binding(0) var<storage, read> x: array<f32>;\n@group(0) @binding(1) var<storage, read> idx: array<u32>;';
  assert.throws(() => boundKernel('k', b, drifted, [1, 1, 1], {}), /kernel k: its WGSL does not hold the declarations of its bindings \(x, idx, rng\)/);
});

test('a plug-in input given as WGSL text reads back to a binding of the same text', () => {
  for (const d of ['var<storage, read> labels: array<u32>;', 'var<uniform> rng: Rng;', 'var<storage, read_write> out: array<vec4<f32>>;']) {
    assert.equal(declarations([bindingOfDeclaration(d)]), `@group(0) @binding(0) ${d}`);
  }
  assert.throws(() => bindingOfDeclaration('var<storage,read> labels: array<u32>;'), /not a declaration as declarations\(\) writes it/);
});

// Each ported definition, at odd shapes and every optional binding: the generated kernel's Plan
// bindings are what its WGSL declares (the older derivation) and, by name and access, what the
// definition says; a subgroup form may read a binding as vectors, never under another name.
const route = { tokens: 6, experts: 3, top: 2, rep: 1, mode: 'logits', score: 'softmax', normalize: true, salt: 1 } as const;
const soft = { seqs: 2, seqLen: 3, width: 5, experts: 3, slots: 2 };
const cosine = { rows: 5, dim: 3, experts: 3 };
const cases: Array<[KernelDefinition, unknown[]]> = [
  [moePoolForward, [pool]],
  [moePoolBackward, [pool]],
  [moeRouterNoise, [9, 0.5, 3, 'uniform']],
  [routerForward, [route]],
  [routerForward, [{ ...route, sampled: true }]],
  [routerForward, [{ ...route, mode: 'random' }]],
  [moeRouterBackward, [{ ...route, balance: 0.01, zloss: 0.001 }]],
  [moeAuxLoss, [0.01, 0.001, 0.5]],
  [moeDispatch, [{ tokens: 6, experts: 3, top: 2, rep: 1, capacity: 5, logits: true, score: 'softmax' }]],
  [moeDispatch, [{ tokens: 6, experts: 3, top: 2, rep: 1, capacity: 12, logits: false, score: 'sigmoid' }]],
  [moeCombine, [{ tokens: 5, width: 3, top: 2 }, true]],
  [moeCombine, [{ tokens: 5, width: 3, top: 2 }, false]],
  [moeCombineBackward, [{ tokens: 5, width: 3, top: 2 }]],
  [moeGroupedMatmul, [{ rows: 10, n: 7, k: 5, experts: 3, gather: { top: 2 }, bias: true, activation: 'gelu', savePre: true }]],
  [moeGroupedMatmul, [{ rows: 12, n: 8, k: 4, experts: 3, transB: true, actGrad: 'relu' }]],
  [moeWeightGrad, [{ k: 5, n: 7, experts: 3, rows: 10, gather: { top: 2 } }]],
  [moeWeightGrad, [{ k: 8, n: 8, experts: 2, rows: 6 }]],
  [moeBiasGrad, [7, 3, 10]],
  ...[moeSoftWeights, moeSoftDispatch, moeSoftCombine, moeSoftStats, moeSoftCombineBackward, moeSoftDispatchBackward].map((d): [KernelDefinition, unknown[]] => [d, [soft]]),
  ...[moeCosineForward, moeCosineBackwardP, moeCosineBackwardEmb, moeCosineBackwardScale].map((d): [KernelDefinition, unknown[]] => [d, [cosine]]),
];

test('every ported kernel declares exactly the bindings of its definition, in every form', () => {
  for (const [def, args] of cases) {
    const want = def.bindings(...args).map((b) => `${b.name}:${b.access === 'uniform' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage'}`);
    for (const [form, gen] of Object.entries(def.forms)) {
      const k = gen!(`${def.kind}_0`, ...args);
      const label = `${def.kind} (${form}) ${JSON.stringify(args)}`;
      assert.deepEqual(k.bindings, bindingsOf(k.wgsl), label);
      assert.deepEqual(k.bindings.map((b) => `${b.name}:${b.type}`), want, label);
    }
  }
});
