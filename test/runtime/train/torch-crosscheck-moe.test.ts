import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { moeBiasName, moeSelName } from '../../../compiler/graph/moe-outputs.js';
import { moeRouterReference } from '../../../compiler/reference/moe.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { rng } from '../../../compiler/reference/random.js';
import { torchPython, torchSkipReason, torchWidths } from '../../../runtime/bench/torch.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { moeConfig } from './moe-helpers.js';
import { assertLossMatches, gradientMismatches, torchGradients } from './torch-compare.js';
import { unstack } from '../../../runtime/bench/torch-track.js';

// The MoE model (token routing, learned router, top 2 of 4, renormalised gates, dropless, Switch
// balance loss, over the micro-batch or per sequence; and expert choice, over the micro-batch and
// within each sequence) through moec and
// through PyTorch's index_select/index_add MoE on the same weights:
// the loss (cross-entropy + λ·balance) and every gradient must agree. moec stacks the experts of a
// layer in one tensor (E, in, out); PyTorch keeps one tensor per expert. Skipped without torch.
// The second test: fine-grained experts with a shared expert (DeepSeekMoE).
// Tolerance per tensor: ‖g_moec − g_torch‖ ≤ 1e-4 · ‖g_torch‖ + 1e-7.

const spec: Gpt2Spec = {
  name: 'crosscheck-moe', layers: 2, width: 32, heads: 4, ffn: 48, vocab: 61, context: 12, dropout: 0,
  batch: 3, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};
const tokenChoice = moeConfig({ experts: 4, top: 2, normalize: true, balance: 0.01, zloss: 0, dropless: true, layers: [0, 1] });
// Expert choice (Zhou et al. 2022): each expert its top c of 36 tokens (c = 18) or of each
// sequence's 12 (c = 6); PyTorch ranks by a stable sort of the same softmax scores.
const expertChoice = (group: 'batch' | 'sequence') => moeConfig({ experts: 4, top: 2, choice: 'expert', choiceGroup: group, capacity: 1, normalize: false, balance: 0, zloss: 0, dropless: false, layers: [0, 1] });
const python = await torchPython();
const skip = { skip: (await torchSkipReason()) ?? false };

for (const [what, moe] of [['token choice', tokenChoice], ['expert choice over the micro-batch', expertChoice('batch')], ['expert choice within each sequence', expertChoice('sequence')]] as const) {
  test(`moec MoE loss and gradients equal PyTorch on the same weights: ${what}`, skip, () => crossCheck(moe));
}

// Auxiliary-loss-free balancing changes which experts a token takes (score + bias), not its gates:
// a bias of the scores' size that flips some choices must give PyTorch's loss and gradients too.
test('with a nonzero routing bias (auxiliary-loss-free balancing), moec equals PyTorch', skip, () => {
  const bias: Record<string, number[]> = { 0: [0.2, -0.15, 0.05, -0.1], 1: [-0.1, 0.25, -0.05, 0.1] };
  return crossCheck({ ...tokenChoice, biasRate: 0.001 }, bias);
});

// The sequence-wise balance loss (DeepSeek-V3): f and P per sequence of 12 tokens, averaged over the
// 3 sequences; a weight large enough that its gradient is a visible part of the router's.
test('with the sequence-wise balance loss (balance-over sequence), moec equals PyTorch', skip, () =>
  crossCheck({ ...tokenChoice, balance: 0.5, balanceOver: 'sequence' }));

async function crossCheck(moe: MoeConfig, bias?: Record<string, number[]>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-torch-moe-'));
  const compiled = compileGpt2(spec, moeBlock(spec, moe));
  const m = await GpuModel.create(await testGpu(), compiled);
  try {
    m.initParams(5);
    const r = rng(9);
    m.writeParams((await m.readFlat('params')).map((v) => v + 0.05 * (r() - 0.5)));
    const params = await m.readParams();
    const n = spec.batch * spec.context;
    const tokens = Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab));
    const targets = Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab));
    const theirs = await torchGradients(dir, new Map([...params].flatMap(([name, data]) => unstack(name, compiled.graph.get(name).shape, data))), tokens, targets, spec,
      { layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, vocab: spec.vocab, context: spec.context, dropout: 0, moe: { experts: moe.experts, top: moe.top, layers: moe.layers, normalize: moe.normalize, balance: moe.balance,
        ...(moe.choice === 'expert' ? { choice: { group: moe.choiceGroup ?? 'batch', capacity: moe.capacity } } : {}), ...(bias ? { bias } : {}), ...torchWidths(moe),
        ...(moe.balanceOver === 'sequence' ? { balanceOver: 'sequence' as const } : {}) } });

    if (bias) for (const l of moe.layers) m.ex.write(moeBiasName(l), Float32Array.from(bias[l]!));
    m.gradients(tokens, targets);
    const loss = await m.trainLoss();
    const grads = await m.readGrads();
    if (bias) {
      // The bias must matter here: some layer's choices differ from the unbiased top-k of its logits
      // (a forward alone leaves the routing tensors in place, as moe-helpers.ts's gradCheck reads them).
      m.ex.run('eval_step');
      const plain = await Promise.all(moe.layers.map(async (l) => {
        const logits = await m.ex.read(`h${l}.moe.logits`);
        const sel = new Uint32Array(await m.ex.readBytes(moeSelName(l)));
        return moeRouterReference({ tokens: logits.length / moe.experts, experts: moe.experts, top: moe.top, rep: 1, mode: 'logits', score: 'softmax', normalize: true, salt: 0, seqLen: 1 }, { logits }).sel.some((e, a) => e !== sel[a]);
      }));
      assert.ok(plain.some(Boolean), 'the bias changes some choices');
    }
    assertLossMatches(loss, theirs);
    const ours = [...grads].flatMap(([name, g]) => unstack(name, compiled.graph.get(name).shape, g).map(([n, t]) => [n, t.data] as [string, Float32Array]));
    const bad = gradientMismatches(ours, theirs);
    assert.deepEqual(bad, []);
  } finally {
    m.destroy();
  }
}

// DeepSeekMoE: 4 experts split in 2 (8 of width 24 = ffn/2, top 4), one shared expert of width 20
// (neither ffn nor the routed width), MoE in layer 1 only so layer 0 keeps the dense ffn 48.
test('moec fine-grained + shared experts (expert-width, shared-width) equal PyTorch on the same weights', skip, () =>
  crossCheck(moeConfig({ experts: 8, top: 4, expertWidth: 24, shared: 1, sharedWidth: 20, normalize: true, balance: 0.01, zloss: 0, dropless: true, layers: [1] })));
