import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { rng } from '../../../compiler/reference/random.js';
import { torchPython, torchSkipReason } from '../../../runtime/bench/torch.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { assertLossMatches, gradientMismatches, torchGradients } from './torch-compare.js';

// The same weights and tokens through moec (WebGPU) and PyTorch (CPU, float32): the loss and every
// parameter's gradient must agree. Skipped, with the reason, where PyTorch is not installed (CI).
// Tolerance per tensor: ‖g_moec − g_torch‖ ≤ 1e-4 · ‖g_torch‖ + 1e-7.

const spec: Gpt2Spec = {
  name: 'crosscheck', layers: 2, width: 32, heads: 4, ffn: 80, vocab: 61, context: 12, dropout: 0,
  batch: 3, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};

const python = await torchPython();

// The LM head chunked over tokens (graph/lm-head.ts): 150 rows in chunks of 64, 64 and 22.
const chunked: Gpt2Spec = { ...spec, name: 'crosscheck-chunked', layers: 1, context: 50, headChunkRows: 64 };

// wte (61 × 32) cut into vocabulary parts of 24, 24 and 13 rows (graph/lm-head.ts vocabParts), with token chunks of 64.
const parted: Gpt2Spec = { ...chunked, name: 'crosscheck-parted', vocabPartRows: 24 };

for (const [what, s] of [['', spec], [' with the LM head chunked over tokens', chunked], [' with the vocabulary in parts', parted]] as const) {
  test(`moec loss and gradients equal PyTorch on the same GPT-2 weights${what}`, { skip: (await torchSkipReason()) ?? false }, () => crossCheck(s));
}

async function crossCheck(spec: Gpt2Spec): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-torch-'));
  const compiled = compileGpt2(spec);
  if (spec.vocabPartRows) assert.match(compiled.graph.notes.join(), /3 parts of 24 rows.*3 token chunks of 64 rows/);
  else if (spec.headChunkRows) assert.match(compiled.graph.notes.join(), /3 chunks of 64 rows/);
  const m = await GpuModel.create(await testGpu(), compiled);
  try {
    m.initParams(11);
    // Perturb so LayerNorm gains and biases are not at their initial 1 and 0.
    const r = rng(3);
    m.writeParams((await m.readFlat('params')).map((v) => v + 0.05 * (r() - 0.5)));
    const params = await m.readParams();
    const n = spec.batch * spec.context;
    const tokens = Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab));
    const targets = Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab));
    targets[5] = 0xffffffff;
    const theirs = await torchGradients(dir, new Map([...params].map(([name, data]) => [name, { shape: compiled.graph.get(name).shape, data }])), tokens, targets, spec,
      { layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, vocab: spec.vocab, context: spec.context, dropout: 0, moe: null });

    m.gradients(tokens, targets);
    assertLossMatches(await m.trainLoss(), theirs);
    const bad = gradientMismatches(await m.readGrads(), theirs);
    assert.deepEqual(bad, []);
  } finally {
    m.destroy();
  }
}
