import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { type CompiledTrial, compileGpt2 } from '../../../compiler/lower/compile.js';
import type { Plan } from '../../../compiler/plan/types.js';
import { checkpointTensors, restoreTensors } from '../../../runtime/train/checkpoint.js';
import { readMoeStats } from '../../../runtime/train/experts.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { batch, labels, moeConfig, spec } from './moe-helpers.js';

// The runtime reaches a plan's buffers through its interface only: the same plan with every buffer
// renamed (consistently, as another compiler version might name them) trains to bit-identical
// losses, statistics and checkpoints, and a checkpoint round trip through it restores the state.

/** Renames every buffer of a plan: the buffers, their regions, the dispatches' bindings and the interface. */
function renamed(plan: Plan): Plan {
  const to = new Map(plan.buffers.map((b, i) => [b.name, `buf${i}`]));
  const rename = (n: string) => to.get(n) ?? n;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return rename(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'scalars' || k === 'perExpert' ? x : walk(x)]));
    return v;
  };
  return {
    ...plan,
    buffers: plan.buffers.map((b) => ({ ...b, name: rename(b.name), ...(b.region ? { region: `region_${b.region}` } : {}) })),
    programs: Object.fromEntries(Object.entries(plan.programs).map(([p, list]) => [p, list.map((d) => ({ ...d, buffers: d.buffers.map(rename) }))])),
    interface: walk(plan.interface) as Plan['interface'],
  };
}

async function run(compiled: CompiledTrial) {
  const m = await GpuModel.create(await testGpu(), compiled);
  m.initParams(3);
  const losses: number[] = [];
  for (let step = 1; step <= 3; step++) {
    const b = batch(step);
    m.trainStep(step, 0.01, 1, [{ ...b, labels }]);
    losses.push(await m.trainLoss());
  }
  const stats = await readMoeStats(m);
  const ckpt = await checkpointTensors(m);
  const evalLoss = (await m.evalLoss([{ ...batch(9), labels }])).loss;
  return { m, losses, stats, ckpt, evalLoss };
}

test('a plan whose buffers are all renamed trains, reports statistics and checkpoints exactly as the original', async () => {
  const s = { ...spec, dropout: 0.1, clip: 1 };
  const compiled = compileGpt2(s, moeBlock(s, moeConfig({ router: 'label', label: 'language', zloss: 0, scope: 'global', unit: 'sequence', top: 1 })));
  const plan = renamed(compiled.plan);
  assert.ok(!plan.buffers.some((b) => compiled.plan.buffers.some((o) => o.name === b.name)), 'no buffer keeps its name');
  const other = { ...compiled, plan };
  const a = await run(compiled);
  const b = await run(other);
  try {
    assert.deepEqual(b.losses, a.losses);
    assert.ok(a.losses.every(Number.isFinite));
    assert.deepEqual(b.stats, a.stats);
    assert.ok(a.stats.load[0]!.some((f) => f > 0));
    assert.equal(b.evalLoss, a.evalLoss);
    assert.deepEqual([...b.ckpt.keys()], [...a.ckpt.keys()]);
    assert.ok(b.ckpt.has('optimizer.adam.m') && b.ckpt.has('optimizer.adam.v'));
    for (const [name, t] of a.ckpt) assert.deepEqual(b.ckpt.get(name)!.data, t.data, name);

    // The original's checkpoint restored into the renamed plan (after more training there) gives the original's state back.
    b.m.trainStep(4, 0.01, 1, [{ ...batch(4), labels }]);
    restoreTensors(b.m, a.ckpt, 'test');
    const back = await checkpointTensors(b.m);
    for (const [name, t] of a.ckpt) assert.deepEqual(back.get(name)!.data, t.data, name);
    b.m.trainStep(4, 0.01, 1, [{ ...batch(4), labels }]);
    a.m.trainStep(4, 0.01, 1, [{ ...batch(4), labels }]);
    assert.equal(await b.m.trainLoss(), await a.m.trainLoss());
  } finally {
    a.m.destroy();
    b.m.destroy();
  }
});
