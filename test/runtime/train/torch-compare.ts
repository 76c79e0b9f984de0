// Shared by the PyTorch cross-checks: one forward/backward in PyTorch on moec's weights and tokens,
// and the per-tensor comparison of the gradients.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { isSkipped, torchCheck } from '../../../runtime/bench/torch.js';
import { type LoadedTensor, readSafetensors, writeSafetensors } from '../../../runtime/store/safetensors.js';

/**
 * PyTorch's loss and gradients (bench.py --check, one step) for `weights` and the batch, under
 * `model`; files go to `dir`. Fails the test if PyTorch cannot run.
 */
export async function torchGradients(
  dir: string, weights: Map<string, { shape: number[]; data: Float32Array }>, tokens: Uint32Array, targets: Uint32Array,
  spec: Gpt2Spec, model: Parameters<typeof torchCheck>[2]['model'],
): Promise<Map<string, LoadedTensor>> {
  const file = path.join(dir, 'weights.safetensors');
  writeSafetensors(file, weights);
  const tokFile = path.join(dir, 'tokens.bin');
  writeFileSync(tokFile, Buffer.concat([Buffer.from(tokens.buffer), Buffer.from(targets.buffer)]));
  const out = path.join(dir, 'torch.safetensors');
  const res = await torchCheck(file, tokFile, { model, batch: spec.batch, steps: 1, warmup: 0, lr: 1e-3, wd: 0, betas: spec.betas, eps: spec.eps, clip: 0, seed: 1 }, out);
  assert.ok(!isSkipped(res), isSkipped(res) ? res.skipped : '');
  return readSafetensors(out).tensors;
}

/** moec's loss equals PyTorch's within 1e-5 relative. */
export function assertLossMatches(loss: number, theirs: Map<string, LoadedTensor>): void {
  const torchLoss = theirs.get('loss')!.data[0]!;
  assert.ok(Math.abs(loss - torchLoss) <= 1e-5 * Math.abs(torchLoss), `loss ${loss} vs PyTorch ${torchLoss}`);
}

/** Tensors whose ‖g_moec − g_torch‖ exceeds 1e-4·‖g_torch‖ + 1e-7, as readable lines; throws if PyTorch lacks one. */
export function gradientMismatches(ours: Iterable<[string, Float32Array]>, theirs: Map<string, LoadedTensor>): string[] {
  const bad: string[] = [];
  for (const [name, g] of ours) {
    const t = theirs.get(`grad.${name}`)?.data;
    if (!t) throw new Error(`PyTorch wrote no grad.${name}`);
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < g.length; i++) {
      diff += (g[i]! - t[i]!) ** 2;
      norm += t[i]! ** 2;
    }
    if (!(Math.sqrt(diff) <= 1e-4 * Math.sqrt(norm) + 1e-7)) bad.push(`${name}: relative difference ${(Math.sqrt(diff) / Math.sqrt(norm)).toExponential(2)}`);
  }
  return bad;
}
