import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { batch, moeConfig, spec as base } from './moe-helpers.js';

// The router's own learning rate and weight decay (train.router-lr, router-wd) on a language model:
// its parameters update on the 'adam.router' uniform, the rest as before.

const spec: Gpt2Spec = { ...base, wd: 0.1, clip: 1 };

/** Parameters by name after `steps` AdamW steps from the same init and batches. */
async function train(s: Gpt2Spec, moe = moeConfig(), steps = 3): Promise<Map<string, Float32Array>> {
  const m = await GpuModel.create(await testGpu(), compileGpt2(s, moeBlock(s, moe)));
  try {
    m.initParams(7);
    for (let step = 1; step <= steps; step++) m.trainStep(step, 1e-2, 1, [batch(step)]);
    return await m.readParams();
  } finally {
    m.destroy();
  }
}

test('router-lr 0 keeps the router weights fixed while the experts move; router-lr = lr is bit-identical to no setting', async () => {
  const init = await train(spec, moeConfig(), 0);
  const plain = await train(spec);
  const same = await train({ ...spec, router: { lrScale: 1, wd: null } });
  const still = await train({ ...spec, router: { lrScale: 0, wd: null } });
  for (const [name, p] of plain) assert.deepEqual(same.get(name), p, `${name}: router-lr = lr changes nothing`);
  for (const [name, p] of still) {
    const moved = p.some((v, i) => v !== init.get(name)![i]);
    if (/\.mlp\.router\./.test(name)) assert.ok(!moved, `${name} stays at its init under router-lr 0`);
    else if (/\.mlp\.experts\.|wte/.test(name)) assert.ok(moved, `${name} trains`);
  }
  assert.ok(plain.get('h.0.mlp.router.weight')!.some((v, i) => v !== init.get('h.0.mlp.router.weight')![i]), 'without router-lr the router trains');
});

test("router-wd: the router's matrices decay by their own rate, the other parameters as before (cosine router: projection and embedding; its temperature undecayed)", async () => {
  const moe = moeConfig({ router: 'cosine', dim: 4 });
  const plain = await train(spec, moe);
  const decayed = await train({ ...spec, router: { lrScale: 1, wd: 5 } }, moe);
  for (const [name, p] of plain) {
    const router = /\.mlp\.router\.(proj|embedding)\./.test(name);
    if (router) assert.notDeepEqual(decayed.get(name), p, `${name} decays differently`);
    else if (!/\.mlp\.router\./.test(name)) continue;
    else assert.ok(decayed.get(name)!.every((v) => Number.isFinite(v)), name);
  }
  // The routing then differs, so the other parameters need not match; the router's norm is smaller.
  const norm = (x: Float32Array) => Math.hypot(...x);
  assert.ok(norm(decayed.get('h.0.mlp.router.proj.weight')!) < norm(plain.get('h.0.mlp.router.proj.weight')!), 'a larger decay shrinks the router');
});
