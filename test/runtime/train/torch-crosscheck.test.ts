import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { rng } from '../../../compiler/reference/random.js';
import { isSkipped, torchCheck, torchPython } from '../../../runtime/bench/torch.js';
import { readSafetensors, writeSafetensors } from '../../../runtime/store/safetensors.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { gradientMismatches } from './torch-compare.js';

// The same weights and tokens through moec (WebGPU) and PyTorch (CPU, float32): the loss and every
// parameter's gradient must agree. Skipped, with the reason, where PyTorch is not installed (CI).
// Tolerance per tensor: ‖g_moec − g_torch‖ ≤ 1e-4 · ‖g_torch‖ + 1e-7.

const spec: Gpt2Spec = {
  name: 'crosscheck', layers: 2, width: 32, heads: 4, ffn: 80, vocab: 61, context: 12, dropout: 0,
  batch: 3, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};

const python = await torchPython();

test('moec loss and gradients equal PyTorch on the same GPT-2 weights', { skip: python ? false : 'python3-torch not installed: run bash runtime/bench/torch/install.sh' }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-torch-'));
  const compiled = compileGpt2(spec);
  const m = await GpuModel.create(await testGpu(), compiled);
  try {
    m.initParams(11);
    // Perturb so LayerNorm gains and biases are not at their initial 1 and 0.
    const r = rng(3);
    m.writeParams((await m.readFlat('params')).map((v) => v + 0.05 * (r() - 0.5)));
    const params = await m.readParams();
    const weights = path.join(dir, 'weights.safetensors');
    writeSafetensors(weights, new Map([...params].map(([name, data]) => [name, { shape: compiled.graph.get(name).shape, data }])));
    const n = spec.batch * spec.context;
    const tokens = Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab));
    const targets = Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab));
    targets[5] = 0xffffffff;
    const tokFile = path.join(dir, 'tokens.bin');
    writeFileSync(tokFile, Buffer.concat([Buffer.from(tokens.buffer), Buffer.from(targets.buffer)]));
    const out = path.join(dir, 'torch.safetensors');
    const res = await torchCheck(weights, tokFile, {
      model: { layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, vocab: spec.vocab, context: spec.context, dropout: 0, moe: null },
      batch: spec.batch, steps: 1, warmup: 0, lr: 1e-3, wd: 0, betas: spec.betas, eps: spec.eps, clip: 0, seed: 1,
    }, out);
    assert.ok(!isSkipped(res), isSkipped(res) ? res.skipped : '');
    const theirs = readSafetensors(out).tensors;

    m.gradients(tokens, targets);
    const loss = await m.trainLoss();
    const torchLoss = theirs.get('loss')!.data[0]!;
    assert.ok(Math.abs(loss - torchLoss) <= 1e-5 * Math.abs(torchLoss), `loss ${loss} vs PyTorch ${torchLoss}`);
    const bad = gradientMismatches(await m.readGrads(), theirs);
    assert.deepEqual(bad, []);
  } finally {
    m.destroy();
  }
});
