import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ngdKernel } from '../../../compiler/kernels/ngd.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { ngdReference } from '../../../compiler/reference/ngd.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

const LR = 0.05;

/** Runs ngdKernel on params/grads of n floats; returns the updated params. */
async function runNgd(params: Float32Array, grads: Float32Array, offset: number, blocks: number, size: number, wd: number, wg?: number): Promise<Float32Array> {
  const n = params.length;
  const b = new PlanBuilder('ngd');
  b.buffer('params', n, 'param');
  b.buffer('grads', n, 'input');
  b.buffer('step', 4, 'uniform');
  b.dispatch('p', ngdKernel('ngd', offset, blocks, size, wd, wg), ['params', 'grads', 'step']);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    ex.write('params', params);
    ex.write('grads', grads);
    ex.write('step', new Float32Array([LR, 1, 1, 0]));
    ex.run('p');
    return await ex.read('params');
  } finally {
    ex.destroy();
  }
}

const frob = (a: Float32Array, b: Float32Array, from: number, to: number) => {
  let s = 0;
  for (let i = from; i < to; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
};

// Blocks of J·D floats with J, D not multiples of 4; 3·131 = 393 is longer than a 256-invocation workgroup.
for (const [J, D, wd] of [[3, 7, 0], [3, 131, 0], [5, 9, 0.1]] as const) {
  test(`ngd equals the reference per expert block (J ${J}, D ${D}, wd ${wd}), a zero-gradient expert moves only by the decay`, async () => {
    const M = 5;
    const offset = 37;
    const size = J * D;
    const n = offset + M * size + 11;
    const params = randomArray(n, 1);
    const grads = randomArray(n, 2, 3);
    grads.fill(0, offset + 2 * size, offset + 3 * size); // expert 2: nothing routed to it
    for (let i = offset + 4 * size; i < offset + 5 * size; i++) grads[i]! *= 1e-3; // expert 4: a small gradient, same step
    const got = await runNgd(params, grads, offset, M, size, wd);
    const want = params.slice();
    ngdReference(want, grads, LR, wd, offset, M, size);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6 * Math.max(1, Math.abs(want[i]!)), `params[${i}]: got ${got[i]}, want ${want[i]}`);
    for (let i = 0; i < offset; i++) assert.equal(got[i], params[i], 'before the blocks: unchanged');
    for (let i = offset + M * size; i < n; i++) assert.equal(got[i], params[i], 'after the blocks: unchanged');
    const z = offset + 2 * size;
    if (wd === 0) {
      for (let i = z; i < z + size; i++) assert.equal(got[i], params[i], `zero-gradient expert [${i - z}]: unchanged`);
      for (const m of [0, 1, 3, 4]) {
        const step = frob(got, params, offset + m * size, offset + (m + 1) * size);
        assert.ok(Math.abs(step - LR) < 1e-5, `expert ${m} moved ${step} in Frobenius norm, want lr = ${LR}`);
      }
    }
  });
}

test('ngd takes a step of size lr from a gradient whose squares underflow f32', async () => {
  const size = 21;
  const params = randomArray(2 * size, 3);
  const grads = randomArray(2 * size, 4, 1e-25);
  const got = await runNgd(params, grads, 0, 2, size, 0, 32);
  const want = params.slice();
  ngdReference(want, grads, LR, 0, 0, 2, size);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6, `params[${i}]: got ${got[i]}, want ${want[i]}`);
  assert.ok(Math.abs(frob(got, params, 0, size) - LR) < 1e-5);
});

test('ngd is deterministic: the same inputs give bit-identical parameters', async () => {
  const size = 3 * 131;
  const params = randomArray(4 * size, 5);
  const grads = randomArray(4 * size, 6, 2);
  const a = await runNgd(params, grads, 0, 4, size, 0.01);
  const b = await runNgd(params, grads, 0, 4, size, 0.01);
  assert.deepEqual(a, b);
});

test('ngd refuses bad shapes', () => {
  assert.throws(() => ngdKernel('ngd', -1, 2, 3, 0), /offset/);
  assert.throws(() => ngdKernel('ngd', 0, 0, 3, 0), /blocks/);
  assert.throws(() => ngdKernel('ngd', 0, 70000, 3, 0), /65535/);
});
