import { test } from 'node:test';
import assert from 'node:assert/strict';
import { biasGradKernel, evalSumKernel, fillKernel, geluBackwardKernel, geluForwardKernel, scaleAddKernel } from '../../../compiler/kernels/elementwise.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { biasGradReference, geluBackwardReference, geluReference } from '../../../compiler/reference/elementwise.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

async function run(build: (b: PlanBuilder) => void, inputs: Record<string, Float32Array>, outputs: string[]): Promise<Record<string, Float32Array>> {
  const b = new PlanBuilder('elementwise');
  build(b);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    for (const [k, v] of Object.entries(inputs)) ex.write(k, v);
    ex.run('p');
    const out: Record<string, Float32Array> = {};
    for (const k of outputs) out[k] = await ex.read(k);
    return out;
  } finally {
    ex.destroy();
  }
}

for (const n of [1, 37, 1000, 70001]) {
  test(`gelu forward and backward against the reference, n=${n}`, async () => {
    const h = randomArray(n, 3, 4);
    const d = randomArray(n, 4);
    const r = await run((b) => {
      b.buffer('h', n, 'input');
      b.buffer('g', n);
      b.buffer('d', n);
      b.dispatch('p', geluForwardKernel('gelu', n), ['h', 'g']);
      b.dispatch('p', geluBackwardKernel('gelu_bwd', n), ['h', 'd']);
    }, { h, d }, ['g', 'd']);
    assert.ok(maxRelError(r.g!, geluReference(h)) < 1e-5);
    assert.ok(maxRelError(r.d!, geluBackwardReference(h, d)) < 1e-5);
  });
}

for (const [rows, cols] of [[1, 1], [7, 37], [130, 5], [33, 300]] as const) {
  test(`bias gradient accumulates column sums, ${rows}×${cols}`, async () => {
    const dy = randomArray(rows * cols, 5);
    const db = randomArray(cols, 6);
    const r = await run((b) => {
      b.buffer('dy', rows * cols, 'input');
      b.buffer('db', cols, 'grad');
      b.dispatch('p', biasGradKernel('bias', rows, cols), ['dy', 'db']);
    }, { dy, db }, ['db']);
    assert.ok(maxRelError(r.db!, biasGradReference(rows, cols, dy, db)) < 1e-5);
  });
}

test('fill, scale-add and the validation accumulator', async () => {
  const x = randomArray(300, 7);
  const acc = randomArray(3, 8);
  // loss kernel output: {mean, gradScale/count} for 40 tokens at gradScale 0.5.
  const loss = new Float32Array([2.5, 0.5 / 40]);
  const r = await run((b) => {
    b.buffer('x', 300);
    b.buffer('acc', 3);
    b.buffer('src', 3, 'input');
    b.buffer('loss', 2, 'input');
    b.buffer('sum', 2);
    b.dispatch('p', fillKernel('fill', 257, 1.5), ['x']);
    b.dispatch('p', scaleAddKernel('sa', 3, 0.25, 0.5), ['src', 'acc']);
    b.dispatch('p', evalSumKernel('es', 0.5), ['loss', 'sum']);
    b.dispatch('p', evalSumKernel('es', 0.5), ['loss', 'sum']);
  }, { x, acc, src: new Float32Array([1, 2, 3]), loss, sum: new Float32Array(2) }, ['x', 'acc', 'sum']);
  assert.ok(r.x!.subarray(0, 257).every((v) => v === 1.5));
  assert.deepEqual(r.x!.subarray(257), x.subarray(257));
  assert.ok(maxRelError(r.acc!, acc.map((a, i) => a * 0.5 + (i + 1) * 0.25)) < 1e-6);
  assert.deepEqual(Array.from(r.sum!), [2 * 2.5 * 40, 80]);
});
