import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionBackwardKernels, attentionForwardKernel, type AttentionShape, type AttentionTiling } from '../../../compiler/kernels/attention.js';
import { attentionBackwardReference, attentionForwardReference, qkvIndex } from '../../../compiler/reference/attention.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { attentionErrors } from '../../helpers/attention.js';

// f32 on the GPU against the f64 reference, relative to max(1, |ref|).
const tol = 1e-4;

/** Max relative errors of out, lse, dq, dk and dv against the reference. */
function check(s: AttentionShape, tiling: Partial<AttentionTiling> = {}, perturb?: (qkv: Float32Array) => void) {
  const [dq, dkv] = attentionBackwardKernels('attn_bwd', s, tiling);
  return attentionErrors(s, [attentionForwardKernel('attn_fwd', s, tiling), dq, dkv], 21, perturb);
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
  assert.ok(e.out > tol && e.lse > tol && Math.max(e.dq, e.dk, e.dv) > tol, JSON.stringify(e));
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
