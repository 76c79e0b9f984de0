import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { checkpointTensors, restoreTensors } from '../../../runtime/train/checkpoint.js';
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

// wte (250 × 32 floats, 31.3 KiB) over a forced 16 KiB binding limit: the embedding and the tied
// head are cut into 2 vocabulary parts of 126 and 124 rows (graph/lm-head.ts vocabParts), each in a region.
const wide: Gpt2Spec = { ...spec, name: 'vocab-parts', vocab: 250, layers: 1 };

test('a vocabulary over the binding limit is cut into parts between regions, with the unsplit flat offsets', () => {
  const one = compileGpt2(wide);
  const cut = compileGpt2(wide, undefined, {}, tiny);
  assert.deepEqual([...cut.layout.offsets], [...one.layout.offsets], 'flat parameter order (the checkpoint format) unchanged');
  assert.equal(cut.layout.total, one.layout.total);
  assert.match(cut.graph.notes.join('\n'), /2 parts of 126 rows/);
  const names = new Set(cut.plan.buffers.map((b) => b.name));
  assert.ok(!names.has('wte.weight') && !names.has('grad.wte.weight'), 'the whole wte is never a buffer');
  for (const b of cut.plan.buffers) {
    if (/^(params|grads|adam\.[mv])(\.\d+)?$|wte/.test(b.name)) assert.ok(b.bytes <= tiny.maxRegionBytes, `${b.name}: ${b.bytes} bytes`);
  }
  const parts = cut.plan.buffers.filter((b) => /^(grad\.)?wte\.weight\.rows/.test(b.name));
  assert.equal(parts.length, 4);
  for (const b of parts) assert.ok(b.region && /^(params|grads)(\.\d+)?$/.test(b.region) && b.offset! % 256 === 0, `${b.name} in ${b.region} at ${b.offset}`);
  // The unsplit plan keeps its single embedding op.
  assert.ok(one.plan.programs.train_step!.some((d) => d.label === 'embedding'));
  assert.ok(cut.plan.programs.train_step!.some((d) => d.label === 'embedding.v1'));
});

test('a model with its vocabulary in parts trains like the unsplit one, and their checkpoints are interchangeable', async () => {
  const cut = await GpuModel.create(await testGpu(), compileGpt2(wide, undefined, {}, tiny));
  const one = await GpuModel.create(await testGpu(), compileGpt2(wide));
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 2e-5 * Math.abs(b), `${what}: ${a} vs ${b}`);
  try {
    const n = wide.batch * wide.context;
    const batch = { tokens: Uint32Array.from({ length: n }, (_, i) => (i * 37) % 250), targets: Uint32Array.from({ length: n }, (_, i) => (i * 41 + 7) % 250) };
    cut.initParams(4);
    one.initParams(4);
    cut.trainStep(1, 3e-3, 1, [batch]);
    one.trainStep(1, 3e-3, 1, [batch]);
    close(await cut.trainLoss(), await one.trainLoss(), 'step 1');
    // The split model's checkpoint (parameters by name, flat moments) restores into the unsplit one.
    const saved = await checkpointTensors(cut);
    restoreTensors(one, saved, 'test');
    const back = await checkpointTensors(one);
    assert.deepEqual([...back.keys()], [...saved.keys()]);
    for (const [name, t] of saved) assert.deepEqual(back.get(name)!.data, t.data, name);
    for (const step of [2, 3]) {
      cut.trainStep(step, 3e-3, 1, [batch]);
      one.trainStep(step, 3e-3, 1, [batch]);
      close(await cut.trainLoss(), await one.trainLoss(), `step ${step}`);
    }
  } finally {
    cut.destroy();
    one.destroy();
  }
});
