// Shared by the PyTorch cross-checks: per-tensor comparison of moec's gradients with PyTorch's.
import type { LoadedTensor } from '../../../runtime/store/safetensors.js';

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
