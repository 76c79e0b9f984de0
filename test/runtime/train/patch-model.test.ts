import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import type { Trial } from '../../../compiler/frontend/types.js';
import { PATCH_EXPERTS, PATCH_ROUTER } from '../../../compiler/graph/patches.js';
import { CompileError, compileTrial } from '../../../compiler/lower/compile.js';
import { prepareClusters } from '../../../runtime/data/clusters.js';
import { ClusterBatcher } from '../../../runtime/data/index.js';
import { dispatchEntropy, PatchModel } from '../../../runtime/train/patch-model.js';
import { testGpu } from '../../helpers/gpu.js';

// The patch model of the cluster task (Chen et al. 2022), whole: compiled from .moe text, run on
// the GPU, against finite differences, and trained.

const SGD = 'optimizer sgd; lr 0.2; schedule constant; wd 0; clip 0';

const source = (model: string, extra = '', train = SGD) => `
data blobs {
  source clusters
  valid 25%
  synthetic { clusters 3; patches 3; dim 8; noise 0.1; feature [0.5, 2]; distractor [0.5, 2]; samples 1200; seed 3 }
}
model p {
${model}
}
train { steps 200; batch 16; ${train} }
evaluate { every 50; experts blobs.valid by cluster }
${extra}`;

function load(model: string, extra = '', train = SGD): { trials: Trial[]; diagnostics: string[] } {
  const r = loadPipeline('mem.moe', { readFile: () => source(model, extra, train) });
  return { trials: r.trials, diagnostics: r.diagnostics.map((d) => `${d.span ? `${d.span.line}:${d.span.col} ` : ''}${d.message}`) };
}

const moeModel = (o: string) => `  ffn 5\n  moe { experts 3; top 1; balance 0.1; zloss 0.01; activation cubic; ${o.includes('expert ') ? o : `expert mlp; ${o}`} }`;

test('the patch model compiles with the parameter count the front end reports', () => {
  for (const [model, total, active] of [[moeModel(''), 3 * 5 * 8 + 8 * 3, 5 * 8 + 8 * 3], ['  ffn 7\n  moe { experts 1; top 1 }', 7 * 8, 7 * 8]] as const) {
    const { trials, diagnostics } = load(model);
    assert.deepEqual(diagnostics, []);
    const t = trials[0]!;
    assert.deepEqual(t.params_count, { total, active });
    const c = compileTrial(t.config, t.id);
    assert.ok(c.patch);
    assert.equal(c.layout.count, total);
  }
});

test('settings that do not apply to the patch model are refused at their line', () => {
  const heads = load(`  heads 2\n${moeModel('')}`).diagnostics;
  assert.ok(heads.some((d) => /^8:\d+ 'heads' does not apply to the patch model/.test(d)), heads.join('\n'));
  const unit = load(moeModel('unit sequence')).diagnostics;
  assert.ok(unit.some((d) => /'unit' does not apply to the patch model/.test(d)), unit.join('\n'));
  const over = load(moeModel('balance-over sequence')).diagnostics;
  assert.ok(over.some((d) => /'balance-over' does not apply to the patch model/.test(d)), over.join('\n'));
  const mult = load('  ffn 2x\n  moe { experts 2; top 1 }').diagnostics;
  assert.ok(mult.some((d) => /^8:\d+ .*'ffn' is the number of filters per expert/.test(d)), mult.join('\n'));
  const none = load('  moe { experts 2; top 1 }').diagnostics;
  assert.ok(none.some((d) => /needs 'ffn'/.test(d)), none.join('\n'));
  for (const [model, ptr] of [
    ['  ffn 4\n  moe { experts 3; top 2 }', '/model/moe/top'],
    ['  ffn 4\n  moe { experts 3; top 1; router random }', '/model/moe/router'],
    ['  ffn 4\n  moe { experts 3; top 1; gate sigmoid }', '/model/moe/gate'],
    ['  ffn 4', '/model'],
  ] as const) {
    const { trials, diagnostics } = load(model);
    assert.deepEqual(diagnostics, []);
    assert.throws(() => compileTrial(trials[0]!.config), (e: unknown) => e instanceof CompileError && e.ptr === ptr, model);
  }
});

async function modelFor(moe: string, train = SGD) {
  const t = load(moeModel(moe), '', train).trials[0]!;
  const c = compileTrial(t.config, t.id);
  const m = await PatchModel.create(await testGpu(), c);
  const ds = t.config.data['blobs']!;
  const data = prepareClusters(ds, 3);
  return { t, c, m, data };
}

// f32 on the GPU, h = 1e-2 on each weight (all of them: the model is small); tolerance
// |fd − g| ≤ 0.03·|g| + 1e-4. A perturbation that flips a sample's chosen expert makes the loss
// jump, so those elements are skipped (counted, and at most a few).
for (const moe of ['noise 0', 'noise 0.8; noise-dist uniform', 'noise 0.5; noise-dist gaussian', 'expert linear; noise 0']) {
  test(`patch model gradients equal finite differences of its loss: ${moe}`, async () => {
    const { m, data, c } = await modelFor(moe);
    try {
      m.initParams(5);
      const flat = await m.readFlat('params');
      const routerAt = c.layout.offsets.get(PATCH_ROUTER)!;
      for (let i = 0; i < 24; i++) flat[routerAt + i] = 0.3 * Math.sin(i + 1); // a router away from its zero start
      m.writeParams(flat);
      const b = new ClusterBatcher(data.train, 3, 8, 16, 1).at(0);
      const train = moe.includes('noise 0.') ? true : false;
      m.gradients(b, 7, 2, train);
      const grads = await m.readFlat('grads');
      const sel = async () => Array.from((await m.ex.read('patch.state')).filter((_, i) => i % 9 === 0)).join();
      const sel0 = await sel();
      const lossAt = async (p: Float32Array) => {
        m.writeParams(p);
        m.gradients(b, 7, 2, train);
        return { loss: await m.trainLoss(), sel: await sel() };
      };
      let checked = 0;
      let flipped = 0;
      for (const [name, offset] of c.layout.offsets) {
        const n = c.graph.get(name).shape.reduce((a, x) => a * x, 1);
        for (let i = 0; i < n; i++) {
          const h = 1e-2;
          const p = flat.slice();
          p[offset + i]! += h;
          const plus = await lossAt(p);
          p[offset + i]! -= 2 * h;
          const minus = await lossAt(p);
          if (plus.sel !== sel0 || minus.sel !== sel0) { flipped++; continue; }
          const fd = (plus.loss - minus.loss) / (2 * h);
          const g = grads[offset + i]!;
          assert.ok(Math.abs(fd - g) <= 0.03 * Math.abs(g) + 1e-4, `${name}[${i}]: fd ${fd} vs ${g}`);
          checked++;
        }
      }
      assert.ok(checked >= 140 && flipped <= 10, `checked ${checked}, skipped ${flipped} for flipped choices`);
    } finally {
      m.destroy();
    }
  });
}

test('training the patch model: loss falls, accuracy rises, a frozen router does not move', async () => {
  for (const router of ['learned', 'frozen']) {
    const { t, m, data, c } = await modelFor(`router ${router}; noise 0.5; noise-dist uniform; expert linear`);
    try {
      m.initParams(t.seed);
      const before = await m.readParams();
      const first = await m.evaluate(data.valid);
      const batcher = new ClusterBatcher(data.train, 3, 8, 16, t.seed);
      for (let step = 1; step <= 300; step++) m.trainStep(step, 0.2, t.seed, batcher.next());
      const after = await m.readParams();
      const last = await m.evaluate(data.valid);
      assert.ok(last.loss < first.loss - 0.1, `${router}: valid loss ${first.loss} -> ${last.loss}`);
      assert.ok(last.accuracy > 0.75, `${router}: accuracy ${last.accuracy}`);
      assert.equal(last.samples, data.valid.n);
      assert.equal(last.dispatch.flat().reduce((a, b) => a + b, 0), data.valid.n);
      assert.notDeepEqual(after.get(PATCH_EXPERTS), before.get(PATCH_EXPERTS));
      if (router === 'frozen') assert.deepEqual(after.get(PATCH_ROUTER), before.get(PATCH_ROUTER), 'a frozen router is never updated');
      else assert.notDeepEqual(after.get(PATCH_ROUTER), before.get(PATCH_ROUTER));
      assert.ok(c.patch);
    } finally {
      m.destroy();
    }
  }
});

const NGD = 'optimizer ngd; lr 0.02; schedule constant; wd 0; clip 0';

test('optimizer ngd: one normalised update over the expert blocks, plain SGD for a learned router, no optimizer state', () => {
  for (const [model, ops] of [
    [moeModel('noise 0.5; noise-dist uniform'), ['ngd.blocks', `sgd.${PATCH_ROUTER}`]],
    [moeModel('router frozen'), ['ngd.blocks']],
    ['  ffn 7\n  moe { experts 1; top 1 }', ['ngd.blocks']],
  ] as const) {
    const { trials, diagnostics } = load(model, '', NGD);
    assert.deepEqual(diagnostics, []);
    const c = compileTrial(trials[0]!.config, trials[0]!.id);
    assert.deepEqual(c.graph.ops.filter((o) => o.phase === 'update').map((o) => o.name), ops, model);
    assert.ok(!c.plan.buffers.some((b) => b.name === 'adam.m' || b.name === 'grad_norm.partials'), 'no moments, no clipping');
    const ngd = c.graph.ops.find((o) => o.name === 'ngd.blocks')!;
    const [M, J, D] = c.graph.get(PATCH_EXPERTS).shape;
    assert.deepEqual(ngd.kernel, { kind: 'ngd', args: [c.layout.offsets.get(PATCH_EXPERTS), M, J! * D!, 0] }, 'one block per expert');
  }
});

test('optimizer ngd: clipping written is refused at the clip line; left out, clip defaults to 0 (1 for the others)', () => {
  const written = load(moeModel(''), '', 'optimizer ngd; lr 0.02; wd 0; clip 0.5').diagnostics;
  assert.ok(written.some((d) => /^11:\d+ optimizer ngd normalises each expert's gradient, so gradient-norm clipping does not apply; clip is 0.5$/.test(d)), written.join('\n'));
  const dflt = load(moeModel(''), '', 'optimizer ngd; lr 0.02; wd 0');
  assert.deepEqual(dflt.diagnostics, []);
  assert.equal(dflt.trials[0]!.config.train.clip, 0);
  assert.equal(load(moeModel(''), '', 'optimizer sgd; lr 0.02').trials[0]!.config.train.clip, 1);
});

test('compileTrial refuses optimizer ngd for a language model (no silent fallback), pointing at the optimizer', () => {
  const r = loadPipeline('lm.moe', { readFile: () => 'data d { source brown }\nmodel m { layers 1; width 16; heads 2 }\ntrain { optimizer sgd; clip 0 }\n' });
  assert.ok(r.ok, r.diagnostics.map((d) => d.message).join('\n'));
  const c = r.trials[0]!.config;
  assert.ok(compileTrial(c));
  assert.throws(() => compileTrial({ ...c, train: { ...c.train, optimizer: 'ngd' } }), (e: unknown) => e instanceof CompileError && e.ptr === '/train/optimizer' && /patch model of the cluster task only/.test(e.message));
});

test('training the patch model with optimizer ngd (Chen et al. 2022): cubic experts learn and specialise', async () => {
  const { t, m, data } = await modelFor('noise 0.5; noise-dist uniform', NGD);
  try {
    m.initParams(t.seed);
    const before = await m.readParams();
    const first = await m.evaluate(data.valid);
    const batcher = new ClusterBatcher(data.train, 3, 8, 16, t.seed);
    for (let step = 1; step <= 300; step++) m.trainStep(step, 0.02, t.seed, batcher.next());
    const after = await m.readParams();
    const last = await m.evaluate(data.valid);
    assert.ok(last.loss < first.loss - 0.3, `valid loss ${first.loss} -> ${last.loss}`);
    assert.ok(last.accuracy > 0.9, `accuracy ${last.accuracy} (chance 0.5)`);
    assert.ok(dispatchEntropy(last.dispatch) < 0.5, `dispatch entropy ${dispatchEntropy(last.dispatch)} of ln 3 = 1.10: clusters go to their own experts`);
    assert.notDeepEqual(after.get(PATCH_ROUTER), before.get(PATCH_ROUTER), 'the router trains by plain SGD');
    // Each step moves an expert that received samples by exactly lr in Frobenius norm, so 300 steps move it by at most 300·lr.
    const W0 = before.get(PATCH_EXPERTS)!;
    const W1 = after.get(PATCH_EXPERTS)!;
    const size = W0.length / 3;
    for (let e = 0; e < 3; e++) {
      let d = 0;
      for (let i = e * size; i < (e + 1) * size; i++) d += (W1[i]! - W0[i]!) ** 2;
      assert.ok(Math.sqrt(d) > 0.02 && Math.sqrt(d) <= 300 * 0.02 + 1e-3, `expert ${e} moved ${Math.sqrt(d)}`);
    }
  } finally {
    m.destroy();
  }
});

test('dispatch entropy (Chen et al.): 0 when each expert sees one cluster, ln K when every expert sees all K evenly', () => {
  assert.equal(dispatchEntropy([[5, 0], [0, 7]]), 0);
  assert.ok(Math.abs(dispatchEntropy([[3, 3, 3], [3, 3, 3]]) - Math.log(2)) < 1e-12);
  // Expert 0 sees clusters (4, 2) of 8 samples, expert 1 cluster 1 only.
  const h = -((2 / 3) * Math.log(2 / 3) + (1 / 3) * Math.log(1 / 3));
  assert.ok(Math.abs(dispatchEntropy([[4, 0], [2, 2]]) - (6 / 8) * h) < 1e-12, 'weighted by samples');
});

// Chen et al. 2022's setup (issue 16): data × 10, PyTorch's fan-in start, full batch, the router's
// own rate and optimiser.
const chenSource = (train: string, moe = 'noise 0') => `
data blobs {
  source clusters
  valid 50%
  synthetic { clusters 3; patches 3; dim 8; noise 0.1; feature [0.5, 2]; centre [1, 2]; distractor [0.5, 3]; scale 10; seed 4; samples 48 }
}
model p {
  ffn 4
  moe { experts 3; top 1; balance 0; activation cubic; init fan-in; init-scale 0.05; ${moe} }
}
train { steps 20; full-batch true; schedule constant; wd 0; ${train} }
`;

async function chenModel(train: string, moe?: string) {
  const r = loadPipeline('chen.moe', { readFile: () => chenSource(train, moe) });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  const t = r.trials[0]!;
  const c = compileTrial(t.config, t.id);
  const m = await PatchModel.create(await testGpu(), c);
  return { t, c, m, data: prepareClusters(t.config.data['blobs']!, 0) };
}

test('patch model gradients with the paper\'s keys (scale 10, fan-in start, full batch) equal finite differences', async () => {
  const { m, c, data } = await chenModel('optimizer ngd; lr 0.001; router-lr 0.1');
  try {
    assert.equal(c.patch!.batch, 24);
    m.initParams(3);
    const flat = await m.readFlat('params');
    const routerAt = c.layout.offsets.get(PATCH_ROUTER)!;
    for (let i = 0; i < 24; i++) flat[routerAt + i] = 0.02 * Math.sin(i + 1);
    // Filters large enough that the cubic experts' outputs are not negligible against h.
    const wAt = c.layout.offsets.get(PATCH_EXPERTS)!;
    for (let i = 0; i < 3 * 4 * 8; i++) flat[wAt + i] = 0.04 * Math.cos(0.7 * i + 0.3);
    m.writeParams(flat);
    const b = { x: data.train.x, y: data.train.y, cluster: data.train.cluster };
    m.gradients(b);
    const grads = await m.readFlat('grads');
    const sel = async () => Array.from((await m.ex.read('patch.state')).filter((_, i) => i % 9 === 0)).join();
    const sel0 = await sel();
    let checked = 0;
    let flipped = 0;
    for (const [name, offset] of c.layout.offsets) {
      const n = c.graph.get(name).shape.reduce((a, x) => a * x, 1);
      for (let i = 0; i < n; i++) {
        const h = 2e-3;
        const loss = async (d: number) => {
          const p = flat.slice();
          p[offset + i]! += d;
          m.writeParams(p);
          m.gradients(b);
          return { loss: await m.trainLoss(), sel: await sel() };
        };
        const [plus, minus] = [await loss(h), await loss(-h)];
        if (plus.sel !== sel0 || minus.sel !== sel0) { flipped++; continue; }
        const fd = (plus.loss - minus.loss) / (2 * h);
        const g = grads[offset + i]!;
        assert.ok(Math.abs(fd - g) <= 0.03 * Math.abs(g) + 2e-4, `${name}[${i}]: fd ${fd} vs ${g}`);
        checked++;
      }
    }
    assert.ok(checked >= 100 && flipped <= 10, `checked ${checked}, skipped ${flipped} for flipped choices`);
  } finally {
    m.destroy();
  }
});

test('router-lr: one step moves the router by router-lr × its gradient and the experts by lr × theirs', async () => {
  const { m, c, data } = await chenModel('optimizer sgd; lr 0.2; router-lr 0.05; clip 0');
  try {
    m.initParams(5);
    const flat = await m.readFlat('params');
    const routerAt = c.layout.offsets.get(PATCH_ROUTER)!;
    for (let i = 0; i < 24; i++) flat[routerAt + i] = 0.02 * Math.sin(i + 1);
    m.writeParams(flat);
    const b = { x: data.train.x, y: data.train.y, cluster: data.train.cluster };
    m.gradients(b);
    const g = await m.readFlat('grads');
    m.trainStep(1, 0.2, 0, b);
    const after = await m.readFlat('params');
    let moved = 0;
    for (const [name, offset] of c.layout.offsets) {
      const rate = name === PATCH_ROUTER ? 0.05 : 0.2;
      const n = c.graph.get(name).shape.reduce((a, x) => a * x, 1);
      for (let i = offset; i < offset + n; i++) {
        const want = flat[i]! - rate * g[i]!;
        assert.ok(Math.abs(after[i]! - want) <= 1e-6 + 1e-5 * Math.abs(want), `${name}[${i - offset}]: ${after[i]} vs ${want}`);
        if (g[i] !== 0) moved++;
      }
    }
    assert.ok(moved > 50, `${moved} weights with a gradient`);
  } finally {
    m.destroy();
  }
});
