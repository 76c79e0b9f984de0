// The kernels ported to typed definitions after the MoE ones (matmul, LayerNorm, embedding,
// attention, cross-entropy and its vocabulary parts, dropout, the element-wise kernels, the gradient
// norm, the optimisers, the f16 cast, expert choice, the patch model): each generated kernel declares
// exactly its definition's bindings in every form, and a graph op that names a binding wrongly, or
// leaves an optional one out, is refused when it is added.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../../compiler/graph/ir.js';
import type { KernelDefinition } from '../../../compiler/kernels/definition.js';
import { bindingsOf } from '../../../compiler/kernels/wgsl-kernel.js';
import { matmul } from '../../../compiler/kernels/matmul.js';
import { layerNormBackward, layerNormForward, layerNormParamGrad } from '../../../compiler/kernels/layernorm.js';
import { embeddingForward, embeddingWpeGrad, embeddingWteGrad } from '../../../compiler/kernels/embedding.js';
import { attentionBackwardDkv, attentionBackwardDq, attentionForward } from '../../../compiler/kernels/attention-subgroup.js';
import { crossEntropyBackward, crossEntropyForward, crossEntropyMean } from '../../../compiler/kernels/crossentropy.js';
import { crossEntropyPartBackward, crossEntropyPartForward, crossEntropyPartLoss } from '../../../compiler/kernels/crossentropy-parts.js';
import { dropoutBackward, dropoutForward } from '../../../compiler/kernels/dropout.js';
import { biasGrad, evalSum, fill, geluBackward, geluForward, scaleAdd } from '../../../compiler/kernels/elementwise.js';
import { gradNormPartial, gradNormTotal } from '../../../compiler/kernels/gradnorm.js';
import { adamw, adamwClip } from '../../../compiler/kernels/adamw.js';
import { sgd } from '../../../compiler/kernels/sgd.js';
import { ngd } from '../../../compiler/kernels/ngd.js';
import { castF16 } from '../../../compiler/kernels/cast.js';
import { moeExpertChoiceDispatch, moeExpertChoiceRouter, moeExpertChoiceStats } from '../../../compiler/kernels/moe-expert-choice.js';
import { patchEval, patchForward, patchLoss, patchRouterGrad, patchWeightGrad, patchWeightGradPartial } from '../../../compiler/kernels/patch-model.js';

const cfg = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
const patch = { batch: 13, patches: 3, dim: 7, experts: 5, filters: 3, act: 'cubic', routed: true, noise: 0.5, noiseDist: 'gaussian', salt: 3, balance: 0, zloss: 0, clusters: 4 } as const;
const ec = { tokens: 12, experts: 3, group: 6, capacity: 4, score: 'softmax' } as const;
const ln = { rows: 5, C: 12 };
const emb = { B: 2, T: 3, C: 6, V: 11 };
const attn = { B: 2, T: 5, heads: 2, headDim: 8 };

// Odd shapes, and every optional binding on and off.
const cases: Array<[KernelDefinition, unknown[]]> = [
  [matmul, [{ m: 7, n: 12, k: 8 }]],
  [matmul, [{ m: 5, n: 7, k: 3, bias: true, activation: 'gelu', savePre: true }]],
  [matmul, [{ m: 9, n: 8, k: 5, transB: true, actGrad: 'relu' }]],
  [matmul, [{ m: 6, n: 5, k: 9, transA: true, accumulate: true }]],
  [matmul, [{ m: 8, n: 8, k: 4, transB: true, f16: { a: 'round', b: 'stored' } }]],
  [layerNormForward, [ln]],
  [layerNormForward, [{ rows: 3, C: 7, perRow: 'workgroup' }]],
  [layerNormBackward, [ln]],
  [layerNormBackward, [{ rows: 3, C: 7, perRow: 'workgroup' }]],
  [layerNormParamGrad, [ln, 64, 16]],
  [layerNormParamGrad, [ln, 64]],
  [embeddingForward, [emb]],
  [embeddingForward, [{ ...emb, part: { v0: 4, rows: 5 } }]],
  [embeddingWteGrad, [emb]],
  [embeddingWteGrad, [{ ...emb, C: 8, part: { v0: 4, rows: 5 } }]],
  [embeddingWpeGrad, [emb]],
  [attentionForward, [attn]],
  [attentionForward, [{ ...attn, headDim: 3 }]],
  [attentionBackwardDq, [attn]],
  [attentionBackwardDkv, [attn]],
  [crossEntropyForward, [{ N: 5, V: 12 }]],
  [crossEntropyForward, [{ N: 5, V: 7, perRow: 'workgroup' }]],
  [crossEntropyMean, [{ N: 5, V: 7 }, 0.5]],
  [crossEntropyMean, [{ N: 5, V: 7, perRow: 'workgroup' }, 0.5]],
  [crossEntropyBackward, [{ N: 5, V: 12 }]],
  [crossEntropyBackward, [{ N: 5, V: 7, perRow: 'workgroup' }]],
  [crossEntropyPartForward, [{ N: 5, V: 11, v0: 4, rows: 7, first: true }]],
  [crossEntropyPartForward, [{ N: 5, V: 11, v0: 0, rows: 4 }]],
  [crossEntropyPartLoss, [{ N: 5, V: 11 }]],
  [crossEntropyPartBackward, [{ N: 5, V: 11, v0: 4, rows: 7 }]],
  [dropoutForward, [37, 0.1, 5]],
  [dropoutBackward, [37, 0.1, 5]],
  [fill, [37]],
  [geluForward, [37]],
  [geluBackward, [37]],
  [biasGrad, [5, 7]],
  [scaleAdd, [3, 0.5]],
  [evalSum, [0.25]],
  [gradNormPartial, [1000]],
  [gradNormTotal, [1000]],
  [adamw, [3, 37, cfg]],
  [adamwClip, [3, 37, cfg, 1]],
  [adamwClip, [3, 37, cfg, 0]],
  [sgd, [3, 37, 0.1, 1]],
  [sgd, [3, 37, 0.1, 0]],
  [ngd, [3, 4, 9, 0.1]],
  [castF16, [[{ src: 0, dst: 0, count: 7 }, { src: 9, dst: 64, count: 3 }]]],
  [moeExpertChoiceRouter, [ec]],
  [moeExpertChoiceDispatch, [ec]],
  [moeExpertChoiceStats, [ec]],
  [patchForward, [patch]],
  [patchForward, [{ ...patch, noise: 0 }]],
  [patchForward, [{ ...patch, routed: false, experts: 1, noise: 0 }]],
  [patchLoss, [patch]],
  [patchLoss, [{ ...patch, routed: false, experts: 1 }]],
  [patchWeightGradPartial, [patch]],
  [patchWeightGrad, [patch]],
  [patchRouterGrad, [patch]],
  [patchEval, [patch]],
];

const planType = (access: string) => (access === 'uniform' ? 'uniform' : access === 'read' ? 'read-only-storage' : 'storage');

test('every newly ported kernel declares exactly the bindings of its definition, in every form', () => {
  for (const [def, args] of cases) {
    const want = def.bindings(...args).map((b) => `${b.name}:${planType(b.access)}`);
    for (const [form, gen] of Object.entries(def.forms)) {
      const k = gen!(`${def.kind}_0`, ...args);
      const label = `${def.kind} (${form}) ${JSON.stringify(args)}`;
      assert.deepEqual(k.bindings, bindingsOf(k.wgsl), label);
      assert.deepEqual(k.bindings.map((b) => `${b.name}:${b.type}`), want, label);
    }
  }
});

function graph(...names: string[]): Graph {
  const g = new Graph('t');
  for (const n of names) g.tensor(n, [4], 'activation');
  return g;
}

test('a wrong binding name of a newly ported op is refused when the op is added', () => {
  const g = graph('x', 'w', 'y', 'b', 'p', 'q', 'r', 's');
  assert.throws(() => g.op('forward', 'h0.mlp.c_fc', matmul, [{ m: 4, n: 4, k: 4 }], { A: 'x', W: 'w', C: 'y' }), /op 'h0\.mlp\.c_fc' binds 3 buffers to kernel 'matmul', whose bindings are A, B, C \(3\): unknown 'W'; missing 'B'/);
  assert.throws(() => g.op('forward', 'h0.ln_1', layerNormForward, [ln], { x: 'x', r: 'w', w: 'y', b: 'b', sum: 'p', out: 'q', stat: 'r' }), /kernel 'ln_fwd'.*unknown 'stat'; missing 'stats'/);
  assert.throws(() => g.op('forward', 'loss', crossEntropyForward, [{ N: 4, V: 4 }], { logits: 'x', target: 'w', losses: 'y' }), /kernel 'ce_fwd'.*unknown 'target'; missing 'targets'/);
  assert.throws(() => g.op('update', 'adamw', adamw, [0, 4, cfg], { params: 'x', grads: 'w', m: 'y', v: 'b', uniform: 'p' }), /kernel 'adamw'.*unknown 'uniform'; missing 'step'/);
  assert.throws(() => g.op('forward', 'embedding', embeddingForward, [emb], { tokens: 'x', wte: 'w', wpe: 'y' }), /kernel 'emb_fwd'.*\(4\): missing 'out'/);
  assert.equal(g.ops.length, 0);
});

test('optional bindings follow the arguments: configured ones must be bound, others may not be', () => {
  const g = graph('x', 'w', 'y', 'b', 'p', 'n');
  // A matmul with a bias binds it; one without may not.
  assert.throws(() => g.op('forward', 'mm', matmul, [{ m: 4, n: 4, k: 4, bias: true }], { A: 'x', B: 'w', C: 'y' }), /missing 'bias'/);
  assert.throws(() => g.op('forward', 'mm', matmul, [{ m: 4, n: 4, k: 4 }], { A: 'x', B: 'w', C: 'y', bias: 'b' }), /unknown 'bias'/);
  // Clipping binds the global norm; without it there is no norm binding.
  assert.throws(() => g.op('update', 'sgd', sgd, [0, 4, 0, 1], { params: 'x', grads: 'w', step: 'p' }), /kernel 'sgd'.*missing 'norm'/);
  assert.throws(() => g.op('update', 'adamw', adamwClip, [0, 4, cfg, 0], { params: 'x', grads: 'w', m: 'y', v: 'b', step: 'p', norm: 'n' }), /kernel 'adamw_clip'.*unknown 'norm'/);
  // The unrouted patch model has no router input; the noisy one needs the rng block.
  assert.throws(() => g.op('forward', 'patch', patchForward, [patch], { x: 'x', W: 'w', y: 'y', state: 'b', pre: 'p', theta: 'n' }), /kernel 'patch_fwd'.*missing 'rng'/);
  // The LayerNorm parameter gradient packs dw and db into one binding when given a db offset.
  assert.throws(() => g.op('backward', 'ln.dwb', layerNormParamGrad, [ln, 64, 16], { dout: 'x', sum: 'w', stats: 'y', dw: 'b', db: 'p' }), /unknown 'dw', 'db'; missing 'dwb'/);
  g.op('backward', 'ln.dwb', layerNormParamGrad, [ln, 64, 16], { dwb: 'b', stats: 'y', sum: 'w', dout: 'x' });
  assert.deepEqual(g.ops[0]!.bind, ['x', 'w', 'y', 'b']);
  g.op('update', 'sgd', sgd, [0, 4, 0, 1], { norm: 'n', step: 'p', grads: 'w', params: 'x' });
  assert.deepEqual(g.ops[1]!.bind, ['x', 'w', 'p', 'n']);
});
