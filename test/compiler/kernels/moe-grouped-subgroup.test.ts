import { test } from 'node:test';
import { loweringFor } from '../../../runtime/gpu/lowering.js';
import assert from 'node:assert/strict';
import {
  type GroupedMatmulShape, type GroupedMatmulTile, groupedMatmulKernel, groupedMatmulSubgroupKernel, groupedMatmulSubgroupTile, groupedWeightGradKernel, groupedWeightGradSubgroupKernel, type WeightGradShape, type WeightGradTile,
} from '../../../compiler/kernels/moe-grouped.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { groupedWeightGradReference } from '../../../compiler/reference/moe.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// The subgroup forms of the grouped expert matmul and weight gradient against the tiled forms (which
// moe.test.ts checks against the reference), on the same data: uneven experts (one empty, one with a
// single slot), gathered rows, every epilogue, transposed weights, sizes that are and are not
// multiples of 4. The weight gradient is also checked against the reference.

const gpu = await testGpu();
const suits = !!loweringFor(gpu).subgroupMatmul;
const skip = suits ? false : 'the adapter has no subgroups of at least 8 (the subgroup matmul is not used there)';

async function run(kernel: ReturnType<typeof groupedMatmulKernel>, g: GroupedMatmulShape, data: Record<string, Float32Array | Uint32Array>): Promise<{ C: Float32Array; pre?: Float32Array }> {
  const b = new PlanBuilder('gmm');
  const names = ['A', 'B', 'C', 'offsets', ...(g.gather ? ['perm'] : []), ...(g.bias ? ['bias'] : []), ...(g.actGrad ? ['H'] : []), ...(g.savePre ? ['pre'] : [])];
  for (const n of names) b.buffer(n, data[n]!.length, n === 'C' || n === 'pre' ? 'output' : 'input');
  b.dispatch('main', kernel, names);
  const ex = await PlanExecutor.create(gpu, b.build());
  try {
    for (const n of names) ex.write(n, data[n]!);
    ex.run('main');
    return { C: await ex.read('C'), ...(g.savePre ? { pre: await ex.read('pre') } : {}) };
  } finally {
    ex.destroy();
  }
}

// The last field, where given, is the subgroup form's tile instead of its default.
const cases: [string, Partial<GroupedMatmulShape>, number, number, GroupedMatmulTile?][] = [
  ['gathered, bias, GELU, saved pre-activation (vec4)', { gather: { top: 2 }, bias: true, activation: 'gelu', savePre: true }, 24, 16],
  ['gathered, bias (odd n and k)', { gather: { top: 2 }, bias: true }, 13, 7],
  ['transposed weights, cubic backward fused (vec4)', { transB: true, actGrad: 'cubic' }, 20, 12],
  ['transposed weights (odd)', { transB: true }, 9, 11],
  ['plain rows, relu', { activation: 'relu' }, 33, 5],
  // n ≥ 128 with the gather: the default walks 4 column blocks per workgroup, the last one partial.
  ['gathered, bias, GELU, saved pre-activation, column blocks walked (vec4)', { gather: { top: 2 }, bias: true, activation: 'gelu', savePre: true }, 168, 8],
  ['gathered, column blocks walked (odd n and k)', { gather: { top: 2 }, bias: true }, 131, 5],
  ['tile 8×4, 3 column blocks', { gather: { top: 2 }, bias: true, activation: 'gelu', savePre: true }, 72, 12, { sm: 8, sn: 4, nb: 3 }],
  ['tile 24×8, transposed weights', { transB: true, actGrad: 'gelu' }, 40, 12, { sm: 24, sn: 8 }],
  ['tile 32×8, 2 column blocks (odd n)', { bias: true, activation: 'relu' }, 37, 9, { sm: 32, sn: 8, nb: 2 }],
];

test('grouped expert matmul, subgroup form: column blocks walked only with the gather and n ≥ 128', () => {
  assert.equal(groupedMatmulSubgroupTile({ rows: 64, n: 256, k: 64, experts: 4, gather: { top: 2 } }).nb, 4);
  assert.equal(groupedMatmulSubgroupTile({ rows: 64, n: 256, k: 64, experts: 4, transB: true }).nb, 1);
  assert.equal(groupedMatmulSubgroupTile({ rows: 64, n: 64, k: 256, experts: 4, gather: { top: 2 } }).nb, 1);
  assert.match(groupedMatmulSubgroupKernel('sg', { rows: 64, n: 256, k: 64, experts: 4, gather: { top: 2 } }).wgsl, /for \(var cb = 0u; cb < 4u; cb\+\+\)/);
  assert.deepEqual(groupedMatmulSubgroupKernel('sg', { rows: 64, n: 256, k: 64, experts: 4, gather: { top: 2 } }).workgroups, [2, 8, 1]);
});

for (const [label, o, n, k, tile] of cases) {
  test(`grouped expert matmul, subgroup form = tiled form: ${label}`, { skip }, async () => {
    const E = 4;
    // Expert sizes 0, 1, 37, 19: empty experts, a single slot, and tiles that straddle 16.
    const sizes = [0, 1, 37, 19];
    const rows = sizes.reduce((a, b) => a + b, 0);
    const offsets = Uint32Array.from([0, ...sizes.map((_, i) => sizes.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
    const g: GroupedMatmulShape = { rows, n, k, experts: E, ...o };
    const tokens = o.gather ? Math.ceil(rows / o.gather.top) : rows;
    const data: Record<string, Float32Array | Uint32Array> = {
      A: randomArray(tokens * k, 1),
      B: randomArray(E * k * n, 2),
      C: new Float32Array(rows * n),
      offsets,
      perm: Uint32Array.from({ length: rows }, (_, i) => (i * 7) % rows),
      bias: randomArray(E * n, 3),
      H: randomArray(rows * n, 4),
      pre: new Float32Array(rows * n),
    };
    const want = await run(groupedMatmulKernel('tile', g), g, data);
    const got = await run(groupedMatmulSubgroupKernel('sg', g, tile), g, data);
    assert.ok(maxRelError(got.C, want.C) < 1e-5, `C: ${maxRelError(got.C, want.C)}`);
    if (g.savePre) assert.ok(maxRelError(got.pre!, want.pre!) < 1e-5, 'pre-activations');
    assert.ok(want.C.some((v) => v !== 0), 'the tiled form wrote results');
  });
}

async function runWgrad(kernel: ReturnType<typeof groupedWeightGradKernel>, g: WeightGradShape, data: Record<string, Float32Array | Uint32Array>): Promise<Float32Array> {
  const b = new PlanBuilder('wgrad');
  const names = ['A', 'D', 'offsets', ...(g.gather ? ['perm'] : []), 'dW'];
  for (const n of names) b.buffer(n, data[n]!.length, n === 'dW' ? 'output' : 'input');
  b.dispatch('main', kernel, names);
  const ex = await PlanExecutor.create(gpu, b.build());
  try {
    for (const n of names) ex.write(n, data[n]!);
    ex.run('main');
    return await ex.read('dW');
  } finally {
    ex.destroy();
  }
}

const wgradCases: [string, boolean, number, number, WeightGradTile?][] = [
  ['gathered, odd k and n', true, 13, 7],
  ['not gathered, odd k and n', false, 13, 7],
  ['gathered (vec4)', true, 24, 16],
  ['not gathered (vec4)', false, 24, 16],
  ['gathered, quickstart c_fc width', true, 64, 256],
  ['not gathered, k multiple of 4, odd n', false, 20, 9],
  ['gathered, odd k, n multiple of 4, 32×4 tile', true, 37, 12, { sm: 32, sn: 4 }],
  ['not gathered (vec4), 8×8 tile', false, 24, 20, { sm: 8, sn: 8 }],
  ['gathered (vec4), 16×4 tile', true, 64, 36, { sm: 16, sn: 4 }],
  ['gathered, odd n, 16×2 tile', true, 24, 7, { sm: 16, sn: 2 }],
  ['not gathered, 4×1 tile', false, 12, 10, { sm: 4, sn: 1 }],
];

for (const [label, gathered, k, n, tile] of wgradCases) {
  test(`grouped weight gradient, subgroup form = tiled form = reference: ${label}`, { skip }, async () => {
    // Expert sizes 0, 1, 37, 16, 19: an empty expert, a single slot, whole and partial groups of 8.
    const sizes = [0, 1, 37, 16, 19];
    const E = sizes.length;
    const rows = sizes.reduce((a, b) => a + b, 0);
    const offsets = Uint32Array.from([0, ...sizes.map((_, i) => sizes.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
    const top = 2;
    const g: WeightGradShape = { k, n, experts: E, rows, ...(gathered ? { gather: { top } } : {}) };
    const tokens = gathered ? Math.ceil(rows / top) : rows;
    const data = {
      A: randomArray(tokens * k, 1),
      D: randomArray(rows * n, 2),
      offsets,
      perm: Uint32Array.from({ length: rows }, (_, i) => (i * 7) % rows),
      dW: randomArray(E * k * n, 3),
    };
    const want = data.dW.slice();
    groupedWeightGradReference(g, { A: data.A, D: data.D, offsets, perm: data.perm, dW: want });
    const tiled = await runWgrad(groupedWeightGradKernel('tile', g), g, data);
    const got = await runWgrad(groupedWeightGradSubgroupKernel('sg', g, tile), g, data);
    assert.ok(maxRelError(tiled, want) < 1e-4, `tiled vs reference: ${maxRelError(tiled, want)}`);
    assert.ok(maxRelError(got, want) < 1e-4, `subgroup vs reference: ${maxRelError(got, want)}`);
    assert.ok(maxRelError(got, tiled) < 1e-5, `subgroup vs tiled: ${maxRelError(got, tiled)}`);
    // The empty expert's gradient is untouched.
    const untouched = data.dW.subarray(0, k * n);
    assert.deepEqual(got.subarray(0, k * n), untouched);
  });
}
