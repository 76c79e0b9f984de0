import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MatmulShape } from '../../compiler/kernels/matmul.js';
import { defaultTiling, matmulKernel, subgroupTiling } from '../../compiler/kernels/matmul.js';
import { KernelCache, matmulTiling, subgroupMatmulSuits } from '../../compiler/lower/kernels.js';
import { matmulReference } from '../../compiler/reference/matmul.js';
import { checkMatmul } from '../../runtime/bench/matmul.js';
import { testGpu } from '../helpers/gpu.js';

const tol = 1e-4;
const odd: Array<[number, number, number]> = [
  [1, 1, 1],
  [17, 33, 65],
  [129, 255, 63],
  [5, 7, 3],
  [64, 64, 64],
  [3, 128, 36],
];

test('reference matmul agrees with a hand-computed product', () => {
  // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]
  const c = matmulReference({ m: 2, n: 2, k: 2 }, new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]));
  assert.deepEqual([...c], [19, 22, 43, 50]);
  const ct = matmulReference({ m: 2, n: 2, k: 2, transA: true, transB: true }, new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]));
  // Aᵀ = [[1,3],[2,4]], Bᵀ = [[5,7],[6,8]] -> [[23,31],[34,46]]
  assert.deepEqual([...ct], [23, 31, 34, 46]);
});

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    for (const [m, n, k] of odd) {
      const s: MatmulShape = { m, n, k, transA, transB };
      test(`matmul ${m}x${n}x${k} transA=${transA} transB=${transB}`, async () => {
        assert.ok((await checkMatmul(await testGpu(), s)) <= tol);
      });
    }
  }
}

const epilogues: MatmulShape[] = [
  { m: 17, n: 33, k: 65, bias: true },
  { m: 17, n: 36, k: 64, bias: true, activation: 'gelu' },
  { m: 9, n: 31, k: 20, bias: true, activation: 'relu', transB: true },
  { m: 13, n: 12, k: 7, batch: 4 },
  { m: 13, n: 11, k: 9, batch: 3, broadcastB: true, transA: true },
  { m: 21, n: 19, k: 17, accumulate: true },
  { m: 20, n: 16, k: 8, batch: 2, accumulate: true, transA: true, transB: true },
  // The dense MLP's fused GELU: forward saving the pre-activation, backward multiplying by gelu'(H).
  { m: 17, n: 36, k: 64, bias: true, activation: 'gelu', savePre: true },
  { m: 19, n: 33, k: 20, bias: true, activation: 'relu', savePre: true },
  { m: 17, n: 36, k: 12, transB: true, actGrad: 'gelu' },
  { m: 15, n: 31, k: 9, transB: true, actGrad: 'relu' },
];
for (const s of epilogues) {
  test(`matmul epilogue ${JSON.stringify(s)}`, async () => {
    assert.ok((await checkMatmul(await testGpu(), s)) <= tol);
  });
}

test('other tilings are correct too', async () => {
  for (const tiling of [
    { tm: 4, tn: 4, wgX: 8, wgY: 8 },
    { tm: 4, tn: 8, wgX: 16, wgY: 4 },
  ]) {
    assert.ok((await checkMatmul(await testGpu(), { m: 37, n: 45, k: 29, transB: true }, tiling)) <= tol);
  }
});

test('a broken kernel is caught by the check (the test can fail)', async () => {
  const gpu = await testGpu();
  const s: MatmulShape = { m: 8, n: 8, k: 8 };
  const good = matmulKernel('mm', s);
  assert.ok(good.wgsl.includes('fma('));
  // Transposing the wrong operand must give a large error.
  const { PlanExecutor } = await import('../../runtime/executor/executor.js');
  const { matmulPlan } = await import('../../runtime/bench/matmul.js');
  const plan = matmulPlan({ ...s, transB: true });
  const ex = await PlanExecutor.create(gpu, plan);
  const a = Float32Array.from({ length: 64 }, (_, i) => i % 5);
  const b = Float32Array.from({ length: 64 }, (_, i) => (i * 7) % 3);
  ex.write('A', a);
  ex.write('B', b);
  ex.run('main');
  const got = await ex.read('C');
  ex.destroy();
  const ref = matmulReference(s, a, b);
  assert.notDeepEqual([...got], [...ref]);
});

test('the kernel generator rejects impossible shapes', () => {
  assert.throws(() => matmulKernel('mm', { m: 0, n: 4, k: 4 }), /M=0/);
  assert.throws(() => matmulKernel('mm', { m: 4, n: 4, k: 4 }, { tm: 3, tn: 4, wgX: 8, wgY: 8 }), /multiples of 4/);
});

// The subgroup layout (compiler/kernels/matmul.ts): every flag combination on odd shapes (clamped
// rows and columns, scalar loads) and on multiple-of-4 shapes (vec4 loads), for the chosen tiling and
// the other tn widths. Skipped where the adapter lacks subgroups of at least 8.
const subgroupSkip = async () => {
  const gpu = await testGpu();
  const min = (gpu.adapter.info as unknown as { subgroupMinSize?: number }).subgroupMinSize ?? 0;
  return gpu.features.has('subgroups') && min >= 8 ? false : 'the adapter lacks subgroups of at least 8';
};
const subgroupFlags: Array<Partial<MatmulShape>> = [
  {},
  { bias: true, activation: 'gelu' },
  { bias: true, activation: 'relu', accumulate: true },
  { accumulate: true },
  { batch: 3 },
  { batch: 2, broadcastB: true, accumulate: true },
  { bias: true, activation: 'gelu', savePre: true },
  { actGrad: 'gelu' },
];
for (const [m, n, k] of [
  [37, 29, 13],
  [40, 36, 16],
  [5, 3, 1],
] as Array<[number, number, number]>) {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`subgroup matmul ${m}x${n}x${k} transA=${transA} transB=${transB}, every epilogue`, { skip: await subgroupSkip() }, async () => {
        const gpu = await testGpu();
        for (const f of subgroupFlags) {
          const s: MatmulShape = { m, n, k, transA, transB, ...f };
          const err = await checkMatmul(gpu, s, subgroupTiling);
          assert.ok(err <= tol, `${JSON.stringify(s)}: error ${err}`);
        }
      });
    }
  }
}

test('subgroup matmul: other tn widths and workgroup sizes', { skip: await subgroupSkip() }, async () => {
  const gpu = await testGpu();
  for (const tiling of [
    { tm: 8, tn: 1, wgX: 8, wgY: 1 },
    { tm: 8, tn: 2, wgX: 16, wgY: 1 },
    { tm: 24, tn: 8, wgX: 8, wgY: 1 },
  ]) {
    for (const s of [
      { m: 37, n: 45, k: 29, transB: true, bias: true },
      { m: 44, n: 40, k: 12, transA: true, accumulate: true },
      { m: 19, n: 64, k: 36, batch: 2, activation: 'gelu' as const },
      { m: 21, n: 27, k: 8, bias: true, activation: 'gelu' as const, savePre: true },
      { m: 21, n: 28, k: 8, transB: true, actGrad: 'gelu' as const },
    ]) {
      const err = await checkMatmul(gpu, s, { ...tiling, layout: 'subgroup' });
      assert.ok(err <= tol, `${JSON.stringify({ s, tiling })}: error ${err}`);
    }
  }
});

test('the subgroup kernel declares the feature it needs, and bad tilings are rejected', () => {
  const k = matmulKernel('mm', { m: 16, n: 16, k: 16 }, subgroupTiling);
  assert.deepEqual(k.features, ['subgroups']);
  assert.match(k.wgsl, /enable subgroups;/);
  assert.match(k.wgsl, /subgroupBroadcast\(/);
  assert.equal(matmulKernel('mm', { m: 16, n: 16, k: 16 }).features, undefined);
  assert.throws(() => matmulKernel('mm', { m: 4, n: 4, k: 4 }, { ...subgroupTiling, tm: 12 }), /multiples of 8/);
});

test('lowering picks the subgroup tiling only when asked to', () => {
  assert.deepEqual(matmulTiling({ m: 1024, n: 64, k: 256 }), defaultTiling);
  assert.deepEqual(matmulTiling({ m: 1024, n: 64, k: 256 }, { subgroupMatmul: true }), subgroupTiling);
  const mm = { kind: 'matmul', args: [{ m: 8, n: 8, k: 8 }] };
  assert.equal(new KernelCache().get(mm).features, undefined);
  assert.deepEqual(new KernelCache({ subgroupMatmul: true }).get(mm).features, ['subgroups']);
  assert.equal(subgroupMatmulSuits(new Set(['subgroups']), 8, true), true);
  assert.equal(subgroupMatmulSuits(new Set(['subgroups']), 4, true), false);
  assert.equal(subgroupMatmulSuits(new Set(['subgroups']), 32, false), false);
  assert.equal(subgroupMatmulSuits(new Set(), 8, true), false);
});
