import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { rng } from '../../../compiler/reference/random.js';
import { torchPython, torchWidths } from '../../../runtime/bench/torch.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { moeConfig } from './moe-helpers.js';
import { assertLossMatches, gradientMismatches, torchGradients } from './torch-compare.js';
import { unstack } from '../../../runtime/bench/torch-track.js';

// The MoE model (token routing, learned router, top 2 of 4, renormalised gates, dropless, Switch
// balance loss) through moec and through PyTorch's index_select/index_add MoE on the same weights:
// the loss (cross-entropy + λ·balance) and every gradient must agree. moec stacks the experts of a
// layer in one tensor (E, in, out); PyTorch keeps one tensor per expert. Skipped without torch.
// The second test: fine-grained experts with a shared expert (DeepSeekMoE).
// Tolerance per tensor: ‖g_moec − g_torch‖ ≤ 1e-4 · ‖g_torch‖ + 1e-7.

const spec: Gpt2Spec = {
  name: 'crosscheck-moe', layers: 2, width: 32, heads: 4, ffn: 48, vocab: 61, context: 12, dropout: 0,
  batch: 3, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};
const moe = moeConfig({ experts: 4, top: 2, normalize: true, balance: 0.01, zloss: 0, dropless: true, layers: [0, 1] });
const python = await torchPython();


/** moec's loss and gradients of `moe` against PyTorch's on the same weights and batch. */
async function crossCheck(moe: MoeConfig): Promise<void> {
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
      { layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, vocab: spec.vocab, context: spec.context, dropout: 0, moe: { experts: moe.experts, top: moe.top, layers: moe.layers, normalize: moe.normalize, balance: moe.balance, ...torchWidths(moe) } });

    m.gradients(tokens, targets);
    assertLossMatches(await m.trainLoss(), theirs);
    const ours = [...(await m.readGrads())].flatMap(([name, g]) => unstack(name, compiled.graph.get(name).shape, g).map(([n, t]) => [n, t.data] as [string, Float32Array]));
    const bad = gradientMismatches(ours, theirs);
    assert.deepEqual(bad, []);
  } finally {
    m.destroy();
  }
}

const skip = python ? false : 'python3-torch not installed: run bash runtime/bench/torch/install.sh';

test('moec MoE loss and gradients equal PyTorch on the same weights', { skip }, () => crossCheck(moe));

// DeepSeekMoE: 4 experts split in 2 (8 of width 24 = ffn/2, top 4), one shared expert of width 20
// (neither ffn nor the routed width), MoE in layer 1 only so layer 0 keeps the dense ffn 48.
test('moec fine-grained + shared experts (expert-width, shared-width) equal PyTorch on the same weights', { skip }, () =>
  crossCheck(moeConfig({ experts: 8, top: 4, expertWidth: 24, shared: 1, sharedWidth: 20, normalize: true, balance: 0.01, zloss: 0, dropless: true, layers: [1] })));
