import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matmulKernel } from '../../compiler/kernels/matmul.js';
import { PlanBuilder } from '../../compiler/plan/builder.js';
import { planProblems } from '../../compiler/plan/schema.js';
import type { Plan } from '../../compiler/plan/types.js';
import { matmulReference } from '../../compiler/reference/matmul.js';
import { maxRelError, randomArray } from '../../compiler/reference/random.js';
import { UserError } from '../../grammar/user-error.js';
import { PlanExecutor } from '../../runtime/executor/executor.js';
import type { Gpu } from '../../runtime/gpu/device.js';
import { matmulPlan } from '../../runtime/bench/matmul.js';
import { testGpu } from '../helpers/gpu.js';

/** A two-dispatch program: H = X·W1 (GELU), Y += H·W2. */
function mlpPlan(m: number, d: number, h: number): Plan {
  const b = new PlanBuilder('mlp');
  const X = b.buffer('X', m * d, 'input');
  const W1 = b.buffer('W1', d * h, 'param');
  const W2 = b.buffer('W2', h * d, 'param');
  const H = b.buffer('H', m * h);
  const Y = b.buffer('Y', m * d, 'output');
  b.dispatch('step', matmulKernel('up', { m, n: h, k: d, activation: 'gelu' }), [X, W1, H]);
  b.dispatch('step', matmulKernel('down', { m, n: d, k: h, accumulate: true }), [H, W2, Y]);
  return b.build();
}

test('a program replays: dispatches run in order, and run(p, 3) runs it three times', async () => {
  const gpu = await testGpu();
  const [m, d, h] = [7, 12, 20];
  const ex = await PlanExecutor.create(gpu, mlpPlan(m, d, h));
  const x = randomArray(m * d, 1);
  const w1 = randomArray(d * h, 2);
  const w2 = randomArray(h * d, 3);
  ex.write('X', x);
  ex.write('W1', w1);
  ex.write('W2', w2);
  ex.run('step', 3);
  const y = await ex.read('Y');
  const hid = matmulReference({ m, n: h, k: d, activation: 'gelu' }, x, w1);
  const once = matmulReference({ m, n: d, k: h }, hid, w2);
  assert.ok(maxRelError(y, once.map((v) => 3 * v)) < 1e-4);
  ex.run('step');
  const y4 = await ex.read('Y');
  assert.ok(maxRelError(y4, once.map((v) => 4 * v)) < 1e-4);
  ex.destroy();
});

test('buffers in one memory region share one allocation at their offsets', async () => {
  const gpu = await testGpu();
  const plan = matmulPlan({ m: 4, n: 4, k: 4 });
  // Only read-only bindings may share an allocation within a dispatch (WebGPU usage rules).
  plan.buffers = plan.buffers.map((b, i) => (b.name === 'C' ? b : { ...b, region: 'arena', offset: 256 * i }));
  const ex = await PlanExecutor.create(gpu, plan);
  const a = randomArray(16, 5);
  const b = randomArray(16, 6);
  ex.write('A', a);
  ex.write('B', b);
  ex.run('main');
  assert.ok(maxRelError(await ex.read('C'), matmulReference({ m: 4, n: 4, k: 4 }, a, b)) < 1e-5);
  assert.deepEqual([...(await ex.read('A'))], [...a]);
  ex.destroy();
});

test('profile gives GPU time per dispatch label from timestamp queries', async () => {
  const gpu = await testGpu();
  const ex = await PlanExecutor.create(gpu, mlpPlan(64, 64, 128));
  const prof = await ex.profile('step', 2);
  ex.destroy();
  if (!gpu.hasTimestamps) return assert.equal(prof, undefined);
  assert.deepEqual(prof!.map((p) => p.label).sort(), ['down', 'up']);
  for (const p of prof!) {
    assert.equal(p.dispatches, 1);
    assert.ok(p.ms >= 0 && Number.isFinite(p.ms));
    assert.equal(p.flops, 2 * 64 * 64 * 128);
  }
});

test('write refuses data that overflows its buffer', async () => {
  const gpu = await testGpu();
  const ex = await PlanExecutor.create(gpu, matmulPlan({ m: 2, n: 2, k: 2 }));
  assert.throws(() => ex.write('A', new Float32Array(5)), /overflows buffer 'A' \(16 bytes\)/);
  assert.throws(() => ex.write('nope', new Float32Array(1)), /has no buffer 'nope'/);
  assert.throws(() => ex.run('nope'), /has no program 'nope' \(it has: main\)/);
  ex.destroy();
});

// --- bad input -------------------------------------------------------------------------------

test('a plan that fails the schema is refused with every problem listed', async () => {
  const gpu = await testGpu();
  const bad = { version: 1, name: 'x', buffers: [{ name: 'A', bytes: 6, role: 'weights' }], kernels: [], programs: { p: [{ kernel: 'k', buffers: [], workgroups: [1, 1] }] } };
  await assert.rejects(PlanExecutor.create(gpu, bad, 'bad.plan.json'), (e: unknown) => {
    assert.ok(e instanceof UserError);
    const text = e.format();
    assert.match(text, /^bad\.plan\.json: error: invalid plan/);
    assert.match(text, /\/buffers\/0\/bytes must be multiple of 4/);
    assert.match(text, /\/buffers\/0\/role must be equal to one of the allowed values: param, grad/);
    assert.match(text, /\/programs\/p\/0\/workgroups must NOT have fewer than 3 items/);
    assert.match(text, /hint: plans are produced by `moec compile`/);
    return true;
  });
});

test('a plan whose references do not resolve is refused', () => {
  const plan = matmulPlan({ m: 2, n: 2, k: 2 });
  plan.programs.main!.push({ kernel: 'missing', buffers: [], workgroups: [1, 1, 1] });
  plan.programs.main!.push({ kernel: 'matmul', buffers: ['A', 'B'], workgroups: [1, 1, 1] });
  plan.programs.main!.push({ kernel: 'matmul', buffers: ['A', 'B', 'Z'], workgroups: [1, 1, 1] });
  assert.deepEqual(planProblems(plan), [
    "/programs/main/1: unknown kernel 'missing'",
    "/programs/main/2: kernel 'matmul' has 3 bindings but 2 buffers are given",
    "/programs/main/3: unknown buffer 'Z'",
  ]);
});

test('a WGSL compile error names the kernel, the WGSL line and the message', async () => {
  const gpu = await testGpu();
  const plan = matmulPlan({ m: 2, n: 2, k: 2 });
  plan.kernels[0]!.wgsl = plan.kernels[0]!.wgsl.replace('let col0 = gid.x', 'let col0 = gid.q');
  const line = plan.kernels[0]!.wgsl.split('\n').findIndex((l) => l.includes('gid.q')) + 1;
  await assert.rejects(PlanExecutor.create(gpu, plan), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /WGSL compile error in kernel 'matmul'/);
    assert.match(e.message, new RegExp(`matmul\\.wgsl:${line}:\\d+: invalid vector swizzle`));
    assert.match(e.message, /let col0 = gid\.q/);
    return true;
  });
});

/** A Gpu whose device fails on any use: proves a check happens before GPU work. */
function untouchableGpu(real: Gpu): Gpu {
  const device = new Proxy({}, { get: (_t, p) => { throw new Error(`GPU touched: device.${String(p)}`); } });
  return { limits: real.limits, features: real.features, info: real.info, device, checkAlive() {}, hasTimestamps: false } as unknown as Gpu;
}

test('a buffer larger than the device allows is refused before any GPU work', async () => {
  const real = await testGpu();
  const limit = real.limits.maxStorageBufferBindingSize;
  const floats = limit / 4 + 1024;
  const b = new PlanBuilder('huge');
  const names = [b.buffer('embedding', floats, 'param'), b.buffer('w', 1, 'param'), b.buffer('out', 1)];
  b.dispatch('main', matmulKernel('mm', { m: 1, n: 1, k: 1 }), names);
  await assert.rejects(PlanExecutor.create(untouchableGpu(real), b.build(), 'big.moe'), (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.format(), /^big\.moe: error: the plan does not fit this device/);
    assert.match(e.message, /buffer 'embedding' needs \d+\.\d MiB but this device allows at most \d+\.\d MiB \(maxStorageBufferBindingSize\)/);
    return true;
  });
});

test('workgroup counts over the device limit and overlapping writable bindings are refused', async () => {
  const real = await testGpu();
  const plan = matmulPlan({ m: 4, n: 4, k: 4 });
  plan.programs.main![0]!.workgroups = [70000, 1, 1];
  plan.buffers = plan.buffers.map((b) => ({ ...b, region: 'arena', offset: 0 }));
  await assert.rejects(PlanExecutor.create(untouchableGpu(real), plan), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /workgroups along x needs 70000 but this device allows at most 65535 \(maxComputeWorkgroupsPerDimension\)/);
    assert.match(e.message, /buffers 'A' and 'C' share a GPU allocation and one is written/);
    return true;
  });
});

test('a lost device gives a clear error on the next use, not a crash', async () => {
  const { Gpu } = await import('../../runtime/gpu/device.js');
  const gpu = await Gpu.open();
  const ex = await PlanExecutor.create(gpu, matmulPlan({ m: 2, n: 2, k: 2 }));
  const errors: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => void errors.push(a.join(' '));
  try {
    gpu.device.destroy(); // as a driver reset would, without going through Gpu.destroy()
    await gpu.device.lost;
    await new Promise((r) => setImmediate(r));
  } finally {
    console.error = error;
  }
  assert.match(errors.join('\n'), /error: the GPU device was lost \(destroyed: .*\)\.\n {2}hint: .*start the command again/);
  assert.throws(() => ex.run('main'), (e: unknown) => e instanceof UserError && /the GPU device was lost/.test(e.message));
  gpu.destroy();
});
