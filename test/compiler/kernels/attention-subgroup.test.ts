import { test } from 'node:test';
import { loweringFor } from '../../../runtime/gpu/lowering.js';
import assert from 'node:assert/strict';
import type { AttentionShape } from '../../../compiler/kernels/attention.js';
import { attentionBackwardSubgroupKernels, attentionForwardSubgroupKernel } from '../../../compiler/kernels/attention-subgroup.js';
import { qkvIndex } from '../../../compiler/reference/attention.js';
import { testGpu } from '../../helpers/gpu.js';
import { attentionErrors } from '../../helpers/attention.js';

// The subgroup forms of the attention kernels against the f64 reference: forward output and
// log-sum-exp, and dq, dk, dv (the three parts of dqkv), on sequence lengths that are not multiples
// of the 8-row block, head dims that are and are not multiples of 4, and several batches and heads.

const gpu = await testGpu();
const suits = !!loweringFor(gpu).subgroupMatmul;
const skip = suits ? false : 'the adapter has no subgroups of at least 8 (the subgroup attention kernels are not used there)';

// f32 on the GPU against the f64 reference, relative to max(1, |ref|), as in attention.test.ts.
const tol = 1e-4;

/** Max relative errors of out, lse, and the q, k and v parts of dqkv. */
function check(s: AttentionShape, rowsPerLane?: number, perturb?: (qkv: Float32Array) => void) {
  const [dq, dkv] = attentionBackwardSubgroupKernels('attn_bwd', s, rowsPerLane);
  return attentionErrors(s, [attentionForwardSubgroupKernel('attn_fwd', s, rowsPerLane), dq, dkv], 31, perturb);
}

// Rows per lane: the default (subgroupRowsPerLane, 2) and others.
const cases: [AttentionShape, number?][] = [
  [{ B: 2, T: 13, heads: 3, headDim: 4 }],
  [{ B: 2, T: 13, heads: 3, headDim: 4 }, 1],
  [{ B: 3, T: 37, heads: 2, headDim: 16 }],
  [{ B: 3, T: 37, heads: 2, headDim: 16 }, 1],
  [{ B: 2, T: 37, heads: 1, headDim: 16 }, 4],
  [{ B: 2, T: 37, heads: 1, headDim: 32 }],
  [{ B: 2, T: 13, heads: 2, headDim: 6 }],
  [{ B: 2, T: 13, heads: 2, headDim: 6 }, 1],
  [{ B: 2, T: 13, heads: 2, headDim: 6 }, 3],
  [{ B: 3, T: 8, heads: 2, headDim: 5 }],
  [{ B: 2, T: 1, heads: 2, headDim: 8 }],
  [{ B: 1, T: 70, heads: 1, headDim: 64 }],
];
for (const [s, rowsPerLane] of cases) {
  test(`subgroup attention forward+backward = reference: B=${s.B} T=${s.T} heads=${s.heads} hd=${s.headDim}, rows per lane ${rowsPerLane ?? 'default'}`, { skip }, async () => {
    const e = await check(s, rowsPerLane);
    for (const [k, v] of Object.entries(e)) assert.ok(v <= tol, `${k} error ${v}`);
  });
}

test('a perturbed input is caught by the subgroup attention check (the test can fail)', { skip }, async () => {
  const s = { B: 2, T: 13, heads: 2, headDim: 6 };
  // A key of row 9 of batch 1 (second block of 8, lane 1): changes outputs at t ≥ 9 there.
  const e = await check(s, undefined, (q) => { q[qkvIndex(s, 1, 9, 1, 1, 3)]! += 0.5; });
  assert.ok(e.out > tol && e.lse > tol && e.dq > tol && e.dk > tol, JSON.stringify(e));
});
