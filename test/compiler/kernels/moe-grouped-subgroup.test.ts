import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type GroupedMatmulShape, groupedMatmulKernel, groupedMatmulSubgroupKernel } from '../../../compiler/kernels/moe-grouped.js';
import { subgroupMatmulSuits } from '../../../compiler/lower/kernels.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// The subgroup form of the grouped expert matmul against the tiled form (which moe.test.ts checks
// against the reference), on the same data: uneven experts (one empty, one with a single slot),
// gathered rows, every epilogue, transposed weights, sizes that are and are not multiples of 4.

const gpu = await testGpu();
const suits = subgroupMatmulSuits(gpu.features, (gpu.adapter.info as unknown as { subgroupMinSize?: number }).subgroupMinSize, gpu.info.software);
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

const cases: [string, Partial<GroupedMatmulShape>, number, number][] = [
  ['gathered, bias, GELU, saved pre-activation (vec4)', { gather: { top: 2 }, bias: true, activation: 'gelu', savePre: true }, 24, 16],
  ['gathered, bias (odd n and k)', { gather: { top: 2 }, bias: true }, 13, 7],
  ['transposed weights, cubic backward fused (vec4)', { transB: true, actGrad: 'cubic' }, 20, 12],
  ['transposed weights (odd)', { transB: true }, 9, 11],
  ['plain rows, relu', { activation: 'relu' }, 33, 5],
];

for (const [label, o, n, k] of cases) {
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
    const got = await run(groupedMatmulSubgroupKernel('sg', g), g, data);
    assert.ok(maxRelError(got.C, want.C) < 1e-5, `C: ${maxRelError(got.C, want.C)}`);
    if (g.savePre) assert.ok(maxRelError(got.pre!, want.pre!) < 1e-5, 'pre-activations');
    assert.ok(want.C.some((v) => v !== 0), 'the tiled form wrote results');
  });
}
