import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionBackwardKernels, attentionForwardKernel, type AttentionShape, type AttentionTiling } from '../../../compiler/kernels/attention.js';
import { attentionBackwardReference, attentionForwardReference, qkvIndex } from '../../../compiler/reference/attention.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';
import { attentionPlan } from '../../../runtime/bench/attention-plan.js';

// f32 on the GPU against the f64 reference, relative to max(1, |ref|).
const tol = 1e-4;

function plan(s: AttentionShape, tiling: Partial<AttentionTiling>) {
  const [dq, dkv] = attentionBackwardKernels('attn_bwd', s, tiling);
  return attentionPlan(s, [attentionForwardKernel('attn_fwd', s, tiling), dq, dkv]);
}

interface Errors { out: number; lse: number; dqkv: number }

async function check(s: AttentionShape, tiling: Partial<AttentionTiling> = {}, perturb?: (qkv: Float32Array) => void): Promise<Errors> {
  const C = s.heads * s.headDim;
  // Spread of 3 so some softmax rows are peaked, not all near uniform.
  const qkv = randomArray(s.B * s.T * 3 * C, 21, 3);
  const dout = randomArray(s.B * s.T * C, 22);
  const ex = await PlanExecutor.create(await testGpu(), plan(s, tiling));
  try {
    const q = qkv.slice();
    perturb?.(q);
    ex.write('qkv', q);
    ex.write('dout', dout);
    // Stale values in dqkv must be overwritten, not accumulated into.
    ex.write('dqkv', randomArray(s.B * s.T * 3 * C, 23));
    ex.run('fwd');
    ex.run('bwd');
    const ref = attentionForwardReference(s, qkv);
    const dqkv = attentionBackwardReference(s, qkv, dout);
    return {
      out: maxRelError(await ex.read('out'), ref.out),
      lse: maxRelError(await ex.read('lse'), ref.lse),
      dqkv: maxRelError(await ex.read('dqkv'), dqkv),
    };
  } finally {
    ex.destroy();
  }
}

const cases: [AttentionShape, Partial<AttentionTiling>][] = [
  [{ B: 2, T: 7, heads: 3, headDim: 5 }, {}],
  [{ B: 1, T: 33, heads: 2, headDim: 16 }, {}],
  [{ B: 2, T: 1, heads: 2, headDim: 8 }, {}],
  [{ B: 1, T: 1, heads: 1, headDim: 3 }, {}],
  // Row blocks and key blocks that do not divide T.
  [{ B: 2, T: 19, heads: 1, headDim: 12 }, { rows: 4, keyBlock: 3 }],
  [{ B: 1, T: 21, heads: 2, headDim: 7 }, { rows: 16, keyBlock: 2 }],
];
for (const [s, tiling] of cases) {
  test(`attention forward+backward B=${s.B} T=${s.T} heads=${s.heads} hd=${s.headDim} ${JSON.stringify(tiling)}`, async () => {
    const e = await check(s, tiling);
    for (const [k, v] of Object.entries(e)) assert.ok(v <= tol, `${k} error ${v}`);
  });
}

test('a perturbed input is caught by the attention check (the test can fail)', async () => {
  const s = { B: 2, T: 7, heads: 3, headDim: 5 };
  // A key of the last row of batch 1: changes only outputs at t = 6 there, and its gradient.
  const e = await check(s, {}, (q) => { q[qkvIndex(s, 1, 6, 1, 2, 4)]! += 0.5; });
  assert.ok(e.out > tol && e.lse > tol && e.dqkv > tol, JSON.stringify(e));
});

test('reference attention: the first position copies its own value; uniform scores average', () => {
  const s = { B: 1, T: 3, heads: 1, headDim: 2 };
  // q = 0 everywhere, so every causal softmax row is uniform.
  const qkv = new Float32Array(3 * 6);
  for (let t = 0; t < 3; t++) {
    qkv[qkvIndex(s, 0, t, 1, 0, 0)] = t;
    qkv[qkvIndex(s, 0, t, 2, 0, 0)] = t + 1;
    qkv[qkvIndex(s, 0, t, 2, 0, 1)] = -t;
  }
  const { out, lse } = attentionForwardReference(s, qkv);
  assert.deepEqual([...out], [1, 0, 1.5, -0.5, 2, -1]);
  assert.ok(Math.abs(lse[2]! - Math.log(3)) < 1e-6);
});

test('reference attention backward matches finite differences', () => {
  const s = { B: 1, T: 4, heads: 2, headDim: 3 };
  const qkv = randomArray(4 * 18, 5, 1.5);
  const dout = randomArray(4 * 6, 6);
  const loss = (x: Float32Array) => attentionForwardReference(s, x).out.reduce((a, v, i) => a + v * dout[i]!, 0);
  const g = attentionBackwardReference(s, qkv, dout);
  const h = 1e-2;
  for (const i of [0, 5, 9, 13, 20, 40, 71]) {
    const p = qkv.slice(); p[i]! += h;
    const m = qkv.slice(); m[i]! -= h;
    assert.ok(Math.abs((loss(p) - loss(m)) / (2 * h) - g[i]!) < 2e-3, `dqkv[${i}]`);
  }
});

test('attention kernels reject a zero dimension', () => {
  assert.throws(() => attentionForwardKernel('a', { B: 1, T: 0, heads: 1, headDim: 4 }), /T=0/);
  assert.throws(() => attentionBackwardKernels('a', { B: 1, T: 4, heads: 1, headDim: 4 }, { rows: 0 }), /rows=0/);
});
