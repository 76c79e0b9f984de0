// Kernel compilation before the first step: progress per kernel, and pipelines shared per device
// between plans with identical kernels (the trials of a sweep), with results unchanged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matmulKernel } from '../../../compiler/kernels/matmul.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { matmulReference } from '../../../compiler/reference/matmul.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { cachedPipelines, type CompileProgress } from '../../../runtime/executor/pipelines.js';
import { testGpu } from '../../helpers/gpu.js';

function plan(name: string, m: number, d: number, h: number) {
  const b = new PlanBuilder(name);
  const X = b.buffer('X', m * d, 'input');
  const W = b.buffer('W', d * h, 'param');
  const Y = b.buffer('Y', m * h, 'output');
  // Accumulating: anything left in Y before the first run would show in the result.
  b.dispatch('step', matmulKernel('mm', { m, n: h, k: d, accumulate: true }), [X, W, Y]);
  return b.build();
}

test('kernels compile before the first step with progress, and a second plan with the same kernels shares them', async () => {
  const gpu = await testGpu();
  const [m, d, h] = [5, 7, 9];
  const seen: CompileProgress[] = [];
  const before = cachedPipelines(gpu);
  const a = await PlanExecutor.create(gpu, plan('a', m, d, h), 'a', { onProgress: (p) => seen.push(p) });
  assert.deepEqual(seen.map((p) => [p.done, p.total, p.shared]), [[0, 1, 0], [1, 1, 0]]);
  assert.equal(cachedPipelines(gpu), before + 1);
  const again: CompileProgress[] = [];
  const b = await PlanExecutor.create(gpu, plan('b', m, d, h), 'b', { onProgress: (p) => again.push(p) });
  assert.deepEqual(again.at(-1), { done: 1, total: 1, shared: 1 });
  assert.equal(cachedPipelines(gpu), before + 1, 'no new pipeline for an identical kernel');
  // Another shape is another kernel.
  const c = await PlanExecutor.create(gpu, plan('c', m + 2, d, h), 'c');
  assert.equal(cachedPipelines(gpu), before + 2);
  const x = randomArray(m * d, 1);
  const w = randomArray(d * h, 2);
  const want = matmulReference({ m, n: h, k: d }, x, w);
  for (const ex of [a, b]) {
    ex.write('X', x);
    ex.write('W', w);
    ex.run('step');
    assert.ok(maxRelError(await ex.read('Y'), want) < 1e-4);
  }
  for (const ex of [a, b, c]) ex.destroy();
});
