import { test } from 'node:test';
import assert from 'node:assert/strict';
import { patchDwChunks, patchEvalKernel, patchForwardKernel, patchLossKernel, patchRouterGradKernel, patchWeightGradPartialKernel, patchWeightGradReduceKernel } from '../../../compiler/kernels/patch-model.js';
import { sgdKernel } from '../../../compiler/kernels/sgd.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import {
  PATCH_STATE, patchBackward, patchEvalAdd, patchForward, patchLogitGrads, type PatchModelShape, patchStateWidth, patchStats, patchTrainLoss,
} from '../../../compiler/reference/clusters.js';
import { statsLength } from '../../../compiler/reference/moe.js';
import { dropoutUniforms } from '../../../compiler/reference/dropout.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { sgdReference } from '../../../compiler/reference/sgd.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

const base: PatchModelShape = {
  batch: 13, patches: 3, dim: 7, experts: 5, filters: 3, act: 'cubic', routed: true,
  noise: 0.7, noiseDist: 'uniform', salt: 9, balance: 0.3, zloss: 0.05, clusters: 3,
};

function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 2e-4): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i]! - want[i]!) <= tol * Math.max(scale, 1e-3), `${what}[${i}]: got ${got[i]}, want ${want[i]} (scale ${scale})`);
  }
}

function inputs(s: PatchModelShape, seed: number) {
  const { batch: B, patches: P, dim: D, experts: M, filters: J } = s;
  const y = Float32Array.from(randomArray(B, seed + 1), (v) => (v > 0 ? 1 : -1));
  const cluster = Uint32Array.from({ length: B }, (_, b) => (b * 7 + seed) % s.clusters);
  return { x: randomArray(B * P * D, seed, 1), W: randomArray(M * J * D, seed + 2, 0.6), theta: randomArray(D * M, seed + 3, 0.8), y, cluster };
}

async function runAll(s: PatchModelShape, seed: number, train: boolean) {
  const { batch: B, patches: P, dim: D, experts: M, filters: J } = s;
  const io = inputs(s, seed);
  const b = new PlanBuilder('patch');
  for (const [k, n] of Object.entries({ x: B * P * D, W: M * J * D, theta: D * M, y: B, cluster: B })) b.buffer(k, n, 'input');
  b.buffer('rng', 4, 'uniform');
  b.buffer('state', B * patchStateWidth(s));
  b.buffer('pre', B * P * J);
  b.buffer('train_loss', 1, 'output');
  b.buffer('stats', statsLength(M), 'output');
  b.buffer('dh', B * M);
  b.buffer('dW', M * J * D);
  // Chunks of 4 samples: several partial sums, the last one short (B = 13).
  b.buffer('partial', patchDwChunks(s, 4) * M * J * D);
  b.buffer('dtheta', D * M);
  b.buffer('acc', 3 + s.clusters * M, 'output');
  const noisy = s.routed && s.noise > 0;
  b.dispatch('p', patchForwardKernel('fwd', s), ['x', 'W', 'y', 'state', 'pre', ...(s.routed ? ['theta'] : []), ...(noisy ? ['rng'] : [])]);
  b.dispatch('p', patchLossKernel('loss', s), ['state', 'y', 'train_loss', ...(s.routed ? ['stats', 'dh'] : [])]);
  b.dispatch('p', patchWeightGradPartialKernel('dw.partial', s, 4), ['x', 'pre', 'state', 'y', 'partial']);
  b.dispatch('p', patchWeightGradReduceKernel('dw', s, 4), ['partial', 'dW']);
  if (s.routed) b.dispatch('p', patchRouterGradKernel('dtheta', s), ['x', 'dh', 'dtheta']);
  b.dispatch('p', patchEvalKernel('eval', s), ['state', 'y', 'cluster', 'acc']);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    for (const k of ['x', 'W', 'theta', 'y', 'cluster'] as const) ex.write(k, io[k]);
    ex.write('rng', dropoutUniforms(seed, 3, train));
    ex.run('p');
    const out: Record<string, Float32Array> = {};
    for (const k of ['state', 'pre', 'train_loss', 'stats', 'dh', 'dW', 'dtheta', 'acc']) out[k] = await ex.read(k);
    return { io, out };
  } finally {
    ex.destroy();
  }
}

const variants: [string, Partial<PatchModelShape>, boolean][] = [
  ['MoE, cubic, uniform noise, training', {}, true],
  ['MoE, cubic, uniform noise, evaluation (no noise)', {}, false],
  ['MoE, linear, Gaussian noise', { act: 'linear', noiseDist: 'gaussian' }, true],
  ['MoE, relu, no noise, no auxiliary losses', { act: 'relu', noise: 0, balance: 0, zloss: 0 }, true],
  ['MoE, gelu, 1 expert', { act: 'gelu', experts: 1 }, true],
  ['single model (no router), cubic', { routed: false, experts: 1, noise: 0 }, true],
];

for (const [label, o, train] of variants) {
  test(`patch model kernels equal the reference: ${label} (B=13 P=3 D=7 J=3)`, async () => {
    const s = { ...base, ...o };
    const M = s.experts;
    const { io, out } = await runAll(s, 11, train);
    const fw = patchForward(s, io.theta, io.W, io.x, io.y, { seed: 11, step: 3, train });
    const S = patchStateWidth(s);
    const col = (k: number) => Array.from({ length: s.batch }, (_, b) => out.state![b * S + k]!);
    assert.deepEqual(col(PATCH_STATE.sel), Array.from(fw.sel), 'chosen experts');
    if (train && s.routed && s.noise > 0 && M > 1) {
      const clean = patchForward(s, io.theta, io.W, io.x, io.y, { seed: 11, step: 3, train: false });
      assert.notDeepEqual(Array.from(clean.sel), Array.from(fw.sel), 'noise changes some choices');
    }
    close(col(PATCH_STATE.gate), fw.gate, 'gate');
    close(col(PATCH_STATE.out), fw.out, 'output');
    close(col(PATCH_STATE.loss), fw.loss, 'loss');
    close(out.pre!, fw.pre, 'pre-activations');
    close(out.train_loss!, [patchTrainLoss(s, fw)], 'train loss');
    const g = patchBackward(s, fw, io.x, io.y);
    close(out.dW!, g.dW, 'dW', 5e-4);
    if (s.routed) {
      close(out.stats!, patchStats(s, fw), 'stats');
      close(out.dh!, patchLogitGrads(s, fw, io.y), 'dlogits', 5e-4);
      close(out.dtheta!, g.dtheta, 'dtheta', 5e-4);
    }
    const acc = new Float64Array(3 + s.clusters * M);
    patchEvalAdd(s, fw, io.y, io.cluster, acc);
    close(out.acc!, acc, 'evaluation sums');
    assert.equal(out.acc![1], s.batch);
  });
}

test('patch model reference gradients equal finite differences of its loss (f64)', () => {
  for (const o of variants.map((v) => v[1])) {
    const s = { ...base, ...o, batch: 6 };
    const io = inputs(s, 5);
    // Noise only moves the choice; finite differences hold it fixed by evaluating at one rng state.
    const rng = { seed: 5, step: 2, train: true };
    const loss = (theta: Float32Array, W: Float32Array) => patchTrainLoss(s, patchForward(s, theta, W, io.x, io.y, rng));
    const fw = patchForward(s, io.theta, io.W, io.x, io.y, rng);
    const g = patchBackward(s, fw, io.x, io.y);
    const h = 1e-3;
    const probe = (arr: Float32Array, i: number) => {
      const plus = arr.slice(); plus[i]! += h;
      const minus = arr.slice(); minus[i]! -= h;
      return [plus, minus] as const;
    };
    for (let i = 0; i < io.W.length; i += 5) {
      const [p, m] = probe(io.W, i);
      const fd = (loss(io.theta, p) - loss(io.theta, m)) / (2 * h);
      assert.ok(Math.abs(fd - g.dW[i]!) <= 0.02 * Math.abs(g.dW[i]!) + 2e-4, `${JSON.stringify(o)} dW[${i}]: fd ${fd} vs ${g.dW[i]}`);
    }
    if (!s.routed) continue;
    for (let i = 0; i < io.theta.length; i++) {
      const [p, m] = probe(io.theta, i);
      if (patchForward(s, p, io.W, io.x, io.y, rng).sel.join() !== fw.sel.join() || patchForward(s, m, io.W, io.x, io.y, rng).sel.join() !== fw.sel.join()) continue; // a choice flipped: not differentiable here
      const fd = (loss(p, io.W) - loss(m, io.W)) / (2 * h);
      assert.ok(Math.abs(fd - g.dtheta[i]!) <= 0.02 * Math.abs(g.dtheta[i]!) + 2e-4, `${JSON.stringify(o)} dtheta[${i}]: fd ${fd} vs ${g.dtheta[i]}`);
    }
  }
});

test('evaluation skips padding samples (y = 0)', async () => {
  const s = { ...base };
  const { batch: B } = s;
  const b = new PlanBuilder('pad');
  b.buffer('state', B * patchStateWidth(s), 'input');
  b.buffer('y', B, 'input');
  b.buffer('cluster', B, 'input');
  b.buffer('acc', 3 + s.clusters * s.experts, 'output');
  b.dispatch('p', patchEvalKernel('eval', s), ['state', 'y', 'cluster', 'acc']);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    const y = Float32Array.from({ length: B }, (_, i) => (i < 4 ? 1 : 0));
    ex.write('state', new Float32Array(B * patchStateWidth(s)).fill(0.5));
    ex.write('y', y);
    ex.write('cluster', new Uint32Array(B));
    ex.run('p');
    const acc = await ex.read('acc');
    assert.equal(acc[1], 4);
    assert.equal(acc[3], 4, 'all four real samples: cluster 0, expert 0');
  } finally {
    ex.destroy();
  }
});

for (const clip of [0, 0.5]) {
  test(`sgd equals the reference on a range (clip ${clip})`, async () => {
    const n = 301;
    const params = randomArray(n, 1);
    const grads = randomArray(n, 2, 3);
    const b = new PlanBuilder('sgd');
    b.buffer('params', n, 'param');
    b.buffer('grads', n, 'input');
    b.buffer('step', 4, 'uniform');
    b.buffer('norm', 1, 'input');
    b.dispatch('p', sgdKernel('sgd', 37, 200, 0.1, clip), ['params', 'grads', 'step', ...(clip > 0 ? ['norm'] : [])]);
    const ex = await PlanExecutor.create(await testGpu(), b.build());
    try {
      let ss = 0;
      for (const g of grads) ss += g * g;
      ex.write('params', params);
      ex.write('grads', grads);
      ex.write('step', new Float32Array([0.05, 1, 1, 0]));
      ex.write('norm', new Float32Array([ss]));
      ex.run('p');
      const got = await ex.read('params');
      const want = params.slice();
      sgdReference(want, grads, 0.05, 0.1, clip, ss, 37, 200);
      close(got, want, 'params', 1e-6);
      assert.equal(got[0], params[0], 'outside the range: unchanged');
    } finally {
      ex.destroy();
    }
  });
}

