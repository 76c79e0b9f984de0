import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dropoutBackwardKernel, dropoutForwardKernel, type DropoutShape } from '../../../compiler/kernels/dropout.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { dropoutHash, dropoutKey, dropoutReference, dropoutUniforms, mix32 } from '../../../compiler/reference/dropout.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

/** Exact comparison, bit for bit (so -0 and 0 differ, and NaNs compare). */
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** In-place forward on `x` and in-place backward on `dout`, plus an out-of-place pair. */
function plan(s: DropoutShape) {
  const b = new PlanBuilder('dropout');
  for (const n of ['x', 'dout', 'x2', 'out2', 'dout2', 'dx2']) b.buffer(n, s.count);
  b.buffer('rng', 4, 'uniform');
  b.dispatch('fwd', dropoutForwardKernel('drop_fwd', s), ['x', 'rng']);
  b.dispatch('bwd', dropoutBackwardKernel('drop_bwd', s), ['dout', 'rng']);
  b.dispatch('fwd', dropoutForwardKernel('drop_fwd_copy', s, false), ['x2', 'out2', 'rng']);
  b.dispatch('bwd', dropoutBackwardKernel('drop_bwd_copy', s, false), ['dout2', 'dx2', 'rng']);
  return b.build();
}

interface Run { fwd: Float32Array; bwd: Float32Array; fwdCopy: Float32Array; bwdCopy: Float32Array }

async function run(s: DropoutShape, x: Float32Array, dout: Float32Array, seed: number, step: number, train: boolean): Promise<Run> {
  const ex = await PlanExecutor.create(await testGpu(), plan(s));
  try {
    ex.write('x', x);
    ex.write('x2', x);
    ex.write('dout', dout);
    ex.write('dout2', dout);
    ex.write('rng', dropoutUniforms(seed, step, train));
    ex.run('fwd');
    ex.run('bwd');
    return { fwd: await ex.read('x'), bwd: await ex.read('dout'), fwdCopy: await ex.read('out2'), bwdCopy: await ex.read('dx2') };
  } finally {
    ex.destroy();
  }
}

for (const s of [
  { count: 100_003, p: 0.1, salt: 7 },
  { count: 1000, p: 0.5, salt: 0xfffffffe, wg: 64, maxGroupsX: 4 },
  { count: 5, p: 0, salt: 1 },
] satisfies DropoutShape[]) {
  test(`dropout ${JSON.stringify(s)} matches the reference bit for bit, in place and not`, async () => {
    const x = randomArray(s.count, 61, 3);
    const dout = randomArray(s.count, 62);
    const r = await run(s, x, dout, 1234, 17, true);
    const fwd = dropoutReference(x, s.p, s.salt, 1234, 17, true);
    const bwd = dropoutReference(dout, s.p, s.salt, 1234, 17, true);
    assert.deepEqual(bits(r.fwd), bits(fwd));
    assert.deepEqual(bits(r.fwdCopy), bits(fwd));
    assert.deepEqual(bits(r.bwd), bits(bwd));
    assert.deepEqual(bits(r.bwdCopy), bits(bwd));
    // Forward and backward drop the same elements.
    for (let i = 0; i < s.count; i++) assert.equal(r.fwd[i] === 0, r.bwd[i] === 0, `element ${i}`);
    const kept = r.fwd.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0) / s.count;
    // 4 standard deviations of the binomial, at least 1 element.
    const slack = Math.max(4 * Math.sqrt((s.p * (1 - s.p)) / s.count), 1 / s.count);
    assert.ok(Math.abs(kept - (1 - s.p)) <= slack, `kept ${kept}, expected ${1 - s.p} ± ${slack}`);
    if (s.p === 0) assert.deepEqual(bits(r.fwd), bits(x));
  });
}

test('dropout is the identity when train is 0', async () => {
  const s = { count: 999, p: 0.3, salt: 3 };
  const x = randomArray(s.count, 63);
  const dout = randomArray(s.count, 64);
  const r = await run(s, x, dout, 1, 2, false);
  for (const [got, want] of [[r.fwd, x], [r.fwdCopy, x], [r.bwd, dout], [r.bwdCopy, dout]] as const) assert.deepEqual(bits(got), bits(want));
});

test('dropout masks: the same inputs give the same mask, a new step, seed or salt a different one', async () => {
  const s = { count: 4096, p: 0.5, salt: 9 };
  const x = new Float32Array(s.count).fill(1);
  const mask = async (seed: number, step: number, salt = s.salt) => (await run({ ...s, salt }, x, x, seed, step, true)).fwd;
  const a = await mask(5, 1);
  assert.deepEqual(bits(await mask(5, 1)), bits(a));
  const differs = (b: Float32Array) => a.reduce((n, v, i) => n + (v !== b[i] ? 1 : 0), 0) / s.count;
  // Independent masks at p = 0.5 disagree on about half the elements.
  for (const other of [await mask(5, 2), await mask(6, 1), await mask(5, 1, 10)]) {
    const d = differs(other);
    assert.ok(d > 0.4 && d < 0.6, `masks differ on ${d} of elements`);
  }
});

test('reference dropout hash: u32 results, no collisions, consecutive indices decorrelated', () => {
  assert.equal(new Set(Array.from({ length: 1 << 16 }, (_, i) => mix32(i))).size, 1 << 16);
  const key = dropoutKey(1, 2, 3);
  let ones = 0;
  for (let i = 0; i < 1 << 14; i++) {
    const h = dropoutHash(key, i);
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
    ones += (h >>> 31) ^ (dropoutHash(key, i + 1) >>> 31);
  }
  // The top bits of neighbours agree about half the time.
  assert.ok(Math.abs(ones / (1 << 14) - 0.5) < 0.03, `${ones}`);
  assert.throws(() => dropoutForwardKernel('d', { count: 4, p: 1, salt: 0 }), /p=1/);
  assert.throws(() => dropoutForwardKernel('d', { count: 4, p: 0.1, salt: -1 }), /salt=-1/);
});
