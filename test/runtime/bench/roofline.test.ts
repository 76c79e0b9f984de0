import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyPlan, rooflineTable } from '../../../runtime/bench/roofline.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

test('the copy kernel the bench rates memory with copies every element (past one workgroup row)', async () => {
  const n = 4 * 70001;
  const ex = await PlanExecutor.create(await testGpu(), copyPlan(n));
  try {
    const src = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 7);
    ex.write('src', src);
    ex.write('dst', new Float32Array(n));
    ex.run('main');
    assert.deepEqual(await ex.read('dst'), src);
  } finally {
    ex.destroy();
  }
});

test('the per-kernel table reports rates against the best ones, and no rate for kernels without FLOPs', () => {
  const rates = { matmulGflops: 20, matmulShape: '512³', copyGBs: 10, copyHow: 'copy kernel' };
  const rows = rooflineTable([
    { kind: 'matmul', ms: 2, share: 0.5, dispatches: 3, flops: 20e6, bytes: 4e6 },
    { kind: 'fill', ms: 0.5, share: 0.05, dispatches: 1, flops: 0, bytes: 1e6 },
  ], rates);
  assert.equal(rows[2], '| matmul | 3 | 2.00 | 50% | 10.00 | 50% | 2.00 | 20% |');
  assert.equal(rows[3], '| fill | 1 | 0.50 | 5.0% | — | — | 2.00 | 20% |');
});
