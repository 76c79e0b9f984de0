import { matmulKernel, defaultTiling, type MatmulShape, type MatmulTiling } from '../../compiler/kernels/matmul.js';
import { PlanBuilder } from '../../compiler/plan/builder.js';
import { matmulReference } from '../../compiler/reference/matmul.js';
import { maxRelError, randomArray } from '../../compiler/reference/random.js';
import type { Gpu } from '../gpu/device.js';
import { PlanExecutor } from '../executor/executor.js';

/** A one-kernel plan computing C = op(A)·op(B) for `s`. */
export function matmulPlan(s: MatmulShape, tiling: MatmulTiling = defaultTiling) {
  const batch = s.batch ?? 1;
  const b = new PlanBuilder(`matmul_${s.m}x${s.n}x${s.k}`);
  const names = [
    b.buffer('A', batch * s.m * s.k, 'input'),
    b.buffer('B', (s.broadcastB ? 1 : batch) * s.k * s.n, 'input'),
    b.buffer('C', batch * s.m * s.n, 'output'),
  ];
  if (s.bias) names.push(b.buffer('bias', s.n, 'input'));
  if (s.savePre) names.push(b.buffer('pre', batch * s.m * s.n, 'output'));
  if (s.actGrad) names.push(b.buffer('H', batch * s.m * s.n, 'input'));
  b.dispatch('main', matmulKernel('matmul', s, tiling), names);
  return b.build();
}

/** Runs the GPU matmul on seeded random data and returns its max relative error against the reference (C, and pre when saved). */
export async function checkMatmul(gpu: Gpu, s: MatmulShape, tiling?: MatmulTiling): Promise<number> {
  const batch = s.batch ?? 1;
  const a = randomArray(batch * s.m * s.k, 1);
  const bm = randomArray((s.broadcastB ? 1 : batch) * s.k * s.n, 2);
  const bias = randomArray(s.n, 3);
  const c0 = randomArray(batch * s.m * s.n, 4);
  const h = randomArray(batch * s.m * s.n, 5, 2);
  const ex = await PlanExecutor.create(gpu, matmulPlan(s, tiling));
  try {
    ex.write('A', a);
    ex.write('B', bm);
    ex.write('C', c0);
    if (s.bias) ex.write('bias', bias);
    if (s.savePre) ex.write('pre', new Float32Array(batch * s.m * s.n).fill(NaN));
    if (s.actGrad) ex.write('H', h);
    ex.run('main');
    const got = await ex.read('C');
    const pre = new Float32Array(batch * s.m * s.n);
    const err = maxRelError(got, matmulReference(s, a, bm, bias, c0, { pre, h }));
    return s.savePre ? Math.max(err, maxRelError(await ex.read('pre'), pre)) : err;
  } finally {
    ex.destroy();
  }
}

export interface MatmulRate {
  gflops: number;
  msPerCall: number;
}

/**
 * Achieved GFLOP/s: `reps` back-to-back dispatches in one submit, repetitions calibrated to last
 * about `minMs`, best of `trials` timings (shared machines are noisy; the best is the least disturbed).
 */
export async function measureMatmul(gpu: Gpu, s: MatmulShape, tiling?: MatmulTiling, minMs = 200, trials = 3): Promise<MatmulRate> {
  const ex = await PlanExecutor.create(gpu, matmulPlan(s, tiling));
  const time = async (reps: number) => {
    const t0 = performance.now();
    ex.run('main', reps);
    await ex.finish();
    return performance.now() - t0;
  };
  try {
    const flops = ex.plan.kernels[0]!.flops!;
    const once = await time(1); // warm-up, and the calibration
    const reps = Math.max(1, Math.min(1 << 14, Math.round(minMs / Math.max(once, 0.01))));
    let best = Infinity;
    for (let t = 0; t < trials; t++) best = Math.min(best, await time(reps));
    return { gflops: (flops * reps) / (best * 1e6), msPerCall: best / reps };
  } finally {
    ex.destroy();
  }
}
