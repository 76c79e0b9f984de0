import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adamwKernel, adamwUniforms, defaultAdamW, type AdamWConfig } from '../../../compiler/kernels/adamw.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { adamwReference } from '../../../compiler/reference/adamw.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

const tol = 1e-4;
const noDecay: AdamWConfig = { ...defaultAdamW, weightDecay: 0 };

/**
 * n parameters; the first `split` are decayed, the rest are not (two dispatches over one buffer,
 * as the compiler splits matrices from vectors). Runs `steps` steps with a changing lr and returns
 * the max error of params, m and v against the reference.
 */
async function check(n: number, split: number, steps: number, wg?: number, perturbGradAtStep?: number, maxGroupsX?: number): Promise<{ p: number; m: number; v: number }> {
  const b = new PlanBuilder('adamw');
  for (const name of ['params', 'grads', 'm', 'v']) b.buffer(name, n, name === 'params' ? 'param' : name === 'grads' ? 'grad' : 'optimizer');
  b.buffer('step', 4, 'uniform');
  b.dispatch('update', adamwKernel('adamw_decay', { count: split }, defaultAdamW, wg, maxGroupsX), ['params', 'grads', 'm', 'v', 'step']);
  b.dispatch('update', adamwKernel('adamw_nodecay', { offset: split, count: n - split }, noDecay, wg, maxGroupsX), ['params', 'grads', 'm', 'v', 'step']);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    const p = randomArray(n, 31);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    ex.write('params', p);
    ex.write('m', m);
    ex.write('v', v);
    for (let t = 1; t <= steps; t++) {
      const lr = 1e-2 * (1 - 0.1 * t);
      const g = randomArray(n, 100 + t, 1 + t);
      const gg = g.slice();
      if (t === perturbGradAtStep) gg[n - 1]! += 1;
      ex.write('grads', gg);
      ex.write('step', adamwUniforms(t, lr, defaultAdamW));
      ex.run('update');
      adamwReference(p, g, m, v, t, lr, defaultAdamW, 0, split);
      adamwReference(p, g, m, v, t, lr, noDecay, split, n - split);
    }
    return { p: maxRelError(await ex.read('params'), p), m: maxRelError(await ex.read('m'), m), v: maxRelError(await ex.read('v'), v) };
  } finally {
    ex.destroy();
  }
}

for (const [n, split, steps, wg] of [
  [37, 20, 4, 256],
  [1030, 777, 5, 64],
  [3, 1, 3, 256],
] as const) {
  test(`adamw n=${n} split=${split} steps=${steps} wg=${wg}`, async () => {
    const e = await check(n, split, steps, wg);
    for (const [k, v] of Object.entries(e)) assert.ok(v <= tol, `${k} error ${v}`);
  });
}

test('adamw spills workgroups past 65535 into y', () => {
  const k = adamwKernel('big', { count: 124_475_904 }, defaultAdamW, 256);
  assert.equal(k.workgroups[0], 65535);
  assert.ok(k.workgroups[0] * k.workgroups[1] * 256 >= 124_475_904);
  assert.ok(k.wgsl.includes('wid.y * 65535u'));
  assert.throws(() => adamwKernel('bad', { count: 0 }), /count=0/);
  assert.throws(() => adamwUniforms(0, 1e-3, defaultAdamW), /step 0/);
});

test('adamw is correct when the grid spills into y (low spill point)', async () => {
  const k = adamwKernel('spill', { count: 1030 }, defaultAdamW, 64, 4);
  assert.deepEqual(k.workgroups, [4, 5, 1]); // 17 groups as 4 x 5, 3 of them past the end
  const e = await check(1030, 777, 2, 64, undefined, 4);
  for (const [key, v] of Object.entries(e)) assert.ok(v <= tol, `${key} error ${v}`);
});

test('reference adamw: the first step moves each weight by about lr against its gradient sign', () => {
  const p = new Float32Array([1, -1]);
  adamwReference(p, new Float32Array([0.5, -2]), new Float32Array(2), new Float32Array(2), 1, 0.1, noDecay);
  assert.ok(Math.abs(p[0]! - 0.9) < 1e-6 && Math.abs(p[1]! + 0.9) < 1e-6);
  const q = new Float32Array([1]);
  adamwReference(q, new Float32Array([0]), new Float32Array(1), new Float32Array(1), 1, 0.1, { ...noDecay, weightDecay: 0.5 });
  assert.ok(Math.abs(q[0]! - 0.95) < 1e-6);
});

test('a perturbed gradient is caught by the adamw check (the test can fail)', async () => {
  const e = await check(37, 20, 3, 256, 2);
  assert.ok(e.p > tol && e.m > tol && e.v > tol, JSON.stringify(e));
});
