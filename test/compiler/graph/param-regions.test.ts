import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';

const spec: Gpt2Spec = {
  name: 'regions', layers: 2, width: 32, heads: 2, ffn: 64, vocab: 16, context: 16, dropout: 0,
  batch: 4, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0.1, clip: 0,
};
// A forced limit of 16 KiB: the ~40 KiB of parameters of this model take several regions.
const tiny = { maxRegionBytes: 16 * 1024 };

test('a tiny region limit cuts params, grads and moments into regions under it, with the unsplit offsets', () => {
  const one = compileGpt2(spec);
  const cut = compileGpt2(spec, undefined, {}, tiny);
  assert.equal(one.layout.regions.length, 1);
  assert.ok(cut.layout.regions.length >= 3, `${cut.layout.regions.length} regions`);
  assert.deepEqual([...cut.layout.offsets], [...one.layout.offsets], 'flat offsets do not depend on the cut');
  assert.equal(cut.layout.total, one.layout.total);
  for (const b of cut.plan.buffers) {
    if (/^(params|grads|adam\.[mv])(\.\d+)?$/.test(b.name)) assert.ok(b.bytes <= tiny.maxRegionBytes, `${b.name}: ${b.bytes} bytes`);
  }
  const updated = (c: typeof one) => c.layout.ranges.reduce((a, r) => a + r.count, 0);
  assert.equal(updated(cut), updated(one), 'AdamW updates the same floats');
});

async function losses(s: Gpt2Spec, fit: { maxRegionBytes?: number }, steps: number): Promise<number[]> {
  const m = await GpuModel.create(await testGpu(), compileGpt2(s, undefined, {}, fit));
  try {
    m.initParams(1);
    const n = s.batch * s.context;
    const seq = (i: number) => (i * 5 + 3) % 11;
    const b = { tokens: Uint32Array.from({ length: n }, (_, i) => seq(i)), targets: Uint32Array.from({ length: n }, (_, i) => seq(i + 1)) };
    const out: number[] = [];
    for (let step = 1; step <= steps; step++) {
      m.trainStep(step, 3e-3, 1, [b]);
      out.push(await m.trainLoss());
    }
    return out;
  } finally {
    m.destroy();
  }
}

test('the losses of a model trained with its parameters cut into regions are bit-identical to one region', async () => {
  assert.deepEqual(await losses(spec, tiny, 6), await losses(spec, {}, 6));
});

test('with clipping, the regions\' gradient norm gives the same losses to float tolerance', async () => {
  const s = { ...spec, clip: 0.5 };
  const a = await losses(s, tiny, 6);
  const b = await losses(s, {}, 6);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= 1e-5 * Math.abs(b[i]!), `step ${i + 1}: ${x} vs ${b[i]}`));
});
