import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { IGNORE_INDEX } from '../../../compiler/kernels/crossentropy.js';
import { rng } from '../../../compiler/reference/random.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';

// Finite-difference check of the whole model's backward pass, in f32 on the GPU: for every
// parameter tensor, the two elements with the largest gradients and a random one are perturbed by
// ±h and the central difference of the mean loss is compared with the analytic gradient.
// Tolerance: |fd − g| ≤ 0.03·|g| + 3e-5, with h = 1e-2. f32 rounding of a loss near ln(V) limits
// the difference quotient to about 1e-5 absolute, which the second term covers.
const H = 1e-2;
const REL = 0.03;
const ABS = 3e-5;

export const tiny: Gpt2Spec = {
  name: 'gradcheck', layers: 2, width: 12, heads: 3, ffn: 20, vocab: 11, context: 5, dropout: 0,
  batch: 2, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};

function batch(spec: Gpt2Spec, seed: number) {
  const r = rng(seed);
  const n = spec.batch * spec.context;
  const tokens = Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab));
  const targets = Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab));
  targets[3] = IGNORE_INDEX; // ignored targets must contribute nothing
  return { tokens, targets };
}

async function gradCheck(spec: Gpt2Spec): Promise<string[]> {
  const compiled = compileGpt2(spec);
  const m = await GpuModel.create(await testGpu(), compiled);
  const failures: string[] = [];
  try {
    // Start away from GPT-2's init, so LayerNorm gains and biases get non-trivial gradients.
    m.initParams(7);
    const r = rng(99);
    const params = (await m.readFlat('params')).map((v) => v + 0.2 * (r() - 0.5));
    m.writeParams(params);
    const b = batch(spec, 5);
    const seed = spec.dropout > 0 ? 1234 : 0;
    m.gradients(b.tokens, b.targets, seed);
    const grads = await m.readFlat('grads');
    // The loss with dropout active uses the same mask as the gradient pass (same seed and step).
    const lossAt = async (flat: Float32Array) => {
      m.writeParams(flat);
      if (seed === 0) return (await m.evalLoss([b])).loss;
      m.gradients(b.tokens, b.targets, seed);
      return m.trainLoss();
    };
    for (const [name, offset] of compiled.layout.offsets) {
      const n = compiled.graph.get(name).shape.reduce((a, c) => a * c, 1);
      const g = grads.subarray(offset, offset + n);
      const byMag = Array.from(g.keys()).sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!));
      const picks = new Set([...byMag.slice(0, 2), Math.floor(r() * n)]);
      for (const i of picks) {
        const p = params.slice();
        p[offset + i] = params[offset + i]! + H;
        const up = await lossAt(p);
        p[offset + i] = params[offset + i]! - H;
        const down = await lossAt(p);
        const fd = (up - down) / (2 * H);
        const an = g[i]!;
        if (!(Math.abs(fd - an) <= REL * Math.abs(an) + ABS)) failures.push(`${name}[${i}]: analytic ${an.toExponential(4)} vs finite difference ${fd.toExponential(4)}`);
      }
    }
  } finally {
    m.destroy();
  }
  return failures;
}

test('whole-model gradients match finite differences (dense GPT-2, no dropout)', async () => {
  const failures = await gradCheck(tiny);
  assert.deepEqual(failures, []);
});

test('whole-model gradients match finite differences with dropout (the mask is fixed by seed and step)', async () => {
  const failures = await gradCheck({ ...tiny, dropout: 0.2, layers: 1 });
  assert.deepEqual(failures, []);
});
