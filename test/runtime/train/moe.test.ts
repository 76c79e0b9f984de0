import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countParams } from '../../../compiler/frontend/params.js';
import type { Model, MoeConfig } from '../../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { activeParams, moeBlock, moeStatsName } from '../../../compiler/graph/moe.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { STAT } from '../../../compiler/reference/moe.js';
import { rng } from '../../../compiler/reference/random.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';

// Whole-model checks of MoE layers on the GPU: finite-difference gradients of every routing variant
// (the method of gradcheck.test.ts), frozen and random routers, parameter counts, and training.

const H = 1e-2;
const REL = 0.03;
const ABS = 3e-5;

const spec: Gpt2Spec = {
  name: 'moe-gradcheck', layers: 2, width: 12, heads: 3, ffn: 10, vocab: 11, context: 5, dropout: 0,
  batch: 2, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};

export const moeConfig = (o: Partial<MoeConfig> = {}): MoeConfig => ({
  every: 1, experts: 3, top: 2, unit: 'token', prefix: null, scope: 'layer', router: 'learned', label: null, dim: 32,
  gate: 'softmax-topk', normalize: false, noise: 0, capacity: 1.25, dropless: true, balance: 0.1, zloss: 0.01, shared: 0,
  expert: 'mlp', activation: 'gelu', second: 'top', dispatch: 'sparse', slots: 1, layers: [0, 1], ...o,
});

const labels = new Uint32Array([4, 2]);

function batch(seed: number) {
  const r = rng(seed);
  const n = spec.batch * spec.context;
  return {
    tokens: Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab)),
    targets: Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab)),
  };
}

/**
 * Central differences of the training loss (cross-entropy + balance + z-loss) against the analytic
 * gradient for the largest two and one random element of every trainable tensor. Top-k routing
 * and capacity are piecewise constant: a perturbation that changes any layer's routing (its
 * selected experts or slots) is not differentiable there and is skipped; few may be.
 */
async function gradCheck(moe: MoeConfig): Promise<{ failures: string[]; checked: number; skipped: number }> {
  const compiled = compileGpt2(spec, moeBlock(spec, moe));
  const m = await GpuModel.create(await testGpu(), compiled);
  const failures: string[] = [];
  let checked = 0;
  let skipped = 0;
  try {
    m.initParams(7);
    const r = rng(99);
    const params = (await m.readFlat('params')).map((v) => v + 0.2 * (r() - 0.5));
    m.writeParams(params);
    const b = batch(5);
    const routes = async () => {
      // A forward pass alone leaves the routing tensors in place (nothing later reuses their memory).
      m.ex.run('eval_step');
      const out: number[] = [];
      for (const l of moe.layers) for (const t of ['sel', 'pos']) out.push(...new Uint32Array(await m.ex.readBytes(`h${l}.moe.${t}`)));
      return out.join();
    };
    m.gradients(b.tokens, b.targets, 0, 1, labels);
    const grads = await m.readFlat('grads');
    const base = await routes();
    const lossAt = async (flat: Float32Array) => {
      m.writeParams(flat);
      m.gradients(b.tokens, b.targets, 0, 1, labels);
      const loss = await m.trainLoss();
      return { loss, same: (await routes()) === base };
    };
    for (const [name, offset] of compiled.layout.offsets) {
      const t = compiled.graph.get(name);
      if (t.trainable === false) continue;
      const n = t.shape.reduce((a, c) => a * c, 1);
      const g = grads.subarray(offset, offset + n);
      const byMag = Array.from(g.keys()).sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!));
      for (const i of new Set([...byMag.slice(0, 2), Math.floor(r() * n)])) {
        const p = params.slice();
        p[offset + i] = params[offset + i]! + H;
        const up = await lossAt(p);
        p[offset + i] = params[offset + i]! - H;
        const down = await lossAt(p);
        if (!up.same || !down.same) { skipped++; continue; }
        checked++;
        const fd = (up.loss - down.loss) / (2 * H);
        const an = g[i]!;
        if (!(Math.abs(fd - an) <= REL * Math.abs(an) + ABS)) failures.push(`${name}[${i}]: analytic ${an.toExponential(4)} vs finite difference ${fd.toExponential(4)}`);
      }
    }
  } finally {
    m.destroy();
  }
  return { failures, checked, skipped };
}

const variants: [string, Partial<MoeConfig>][] = [
  ['token, learned, softmax-topk, dropless, balance + z-loss', {}],
  ['token, learned, topk-softmax, capacity 0.6 (drops)', { gate: 'topk-softmax', dropless: false, capacity: 0.6 }],
  ['token, learned, sigmoid renormalised, top 1 of 3, MoE in layer 1 only', { gate: 'sigmoid', normalize: true, top: 1, layers: [1] }],
  ['sequence (mean of the whole sequence), learned, softmax-topk renormalised', { unit: 'sequence', normalize: true }],
  ['sequence (prefix 3), learned, top 1 (Switch)', { unit: 'sequence', prefix: 3, top: 1 }],
  ['token, frozen router', { router: 'frozen' }],
  ['token, random router', { router: 'random', balance: 0, zloss: 0 }],
  ['sequence, label router', { router: 'label', label: 'genre', top: 1, unit: 'sequence', balance: 0, zloss: 0 }],
];

for (const [what, o] of variants) {
  test(`MoE gradients match finite differences: ${what}`, async () => {
    const { failures, checked, skipped } = await gradCheck(moeConfig(o));
    assert.deepEqual(failures, []);
    assert.ok(checked >= 2 * skipped && checked > 40, `checked ${checked}, skipped ${skipped} (routing changed)`);
  });
}

const model = (moe: MoeConfig | null, ffn = spec.ffn): Model => ({
  name: 'm', layers: spec.layers, width: spec.width, heads: spec.heads, ffn, dropout: 0, vocab: spec.vocab, context: spec.context, moe,
});

test("the plan's parameter count (total and active) equals the front end's", () => {
  for (const [, o] of variants) {
    const moe = moeConfig(o);
    const c = compileGpt2(spec, moeBlock(spec, moe));
    assert.deepEqual({ total: c.layout.count, active: activeParams(c.graph, moe) }, countParams(model(moe)), JSON.stringify(o));
  }
  const dense = compileGpt2(spec);
  assert.deepEqual({ total: dense.layout.count, active: activeParams(dense.graph, null) }, countParams(model(null)));
});

test('a frozen router is unchanged by training while the experts learn; stats are read back', async () => {
  const moe = moeConfig({ router: 'frozen' });
  const m = await GpuModel.create(await testGpu(), compileGpt2(spec, moeBlock(spec, moe)));
  try {
    m.initParams(3);
    const before = await m.readParams();
    const b = batch(8);
    for (let step = 1; step <= 4; step++) m.trainStep(step, 1e-2, 1, [b]);
    const after = await m.readParams();
    for (const l of [0, 1]) {
      assert.deepEqual(after.get(`h.${l}.mlp.router.weight`), before.get(`h.${l}.mlp.router.weight`));
      assert.notDeepEqual(after.get(`h.${l}.mlp.experts.c_fc.weight`), before.get(`h.${l}.mlp.experts.c_fc.weight`));
      const stats = await m.ex.read(moeStatsName(l));
      const counts = stats.subarray(STAT.counts, STAT.counts + 3);
      assert.equal(counts.reduce((a, c) => a + c, 0), spec.batch * spec.context * 2, 'every token routed to 2 experts');
      assert.equal(stats[STAT.dropped], 0, 'dropless');
      assert.ok(stats[STAT.balance]! > 0 && stats[STAT.entropy]! > 0 && stats[STAT.z]! > 0, `${[...stats]}`);
    }
  } finally {
    m.destroy();
  }
});

test('a random router is reproducible from its seed and differs across seeds and steps', async () => {
  const moe = moeConfig({ router: 'random', experts: 4, balance: 0 });
  const compiled = compileGpt2(spec, moeBlock(spec, moe));
  const b = batch(3);
  const routeOf = async (seed: number, step: number) => {
    const m = await GpuModel.create(await testGpu(), compiled);
    try {
      m.initParams(1);
      m.gradients(b.tokens, b.targets, seed, step);
      return { sel: [...new Uint32Array(await m.ex.readBytes('h0.moe.sel'))].join(), loss: await m.trainLoss() };
    } finally {
      m.destroy();
    }
  };
  const a = await routeOf(11, 3);
  assert.deepEqual(await routeOf(11, 3), a, 'same seed and step: same experts, bit-identical loss');
  assert.notEqual((await routeOf(12, 3)).sel, a.sel);
  assert.notEqual((await routeOf(11, 4)).sel, a.sel);
});

test('a 2-layer MoE model learns a repeating pattern (loss near zero)', async () => {
  const s: Gpt2Spec = { ...spec, name: 'moe-pattern', width: 16, heads: 2, ffn: 32, vocab: 13, context: 8, batch: 4 };
  const m = await GpuModel.create(await testGpu(), compileGpt2(s, moeBlock(s, moeConfig({ experts: 4, top: 2, balance: 0.01, zloss: 0.001 }))));
  try {
    m.initParams(1);
    const n = s.batch * s.context;
    // Each sequence counts up from its own start, mod 7: next token = (token + 1) mod 7.
    const tokens = Uint32Array.from({ length: n }, (_, i) => (Math.floor(i / s.context) * 3 + (i % s.context)) % 7);
    const targets = tokens.map((t) => (t + 1) % 7);
    let first = 0;
    for (let step = 1; step <= 150; step++) {
      m.trainStep(step, 1e-2, 1, [{ tokens, targets }]);
      if (step === 1) first = await m.trainLoss();
    }
    const last = (await m.evalLoss([{ tokens, targets }])).loss;
    assert.ok(first > 2 && last < 0.05, `loss ${first} -> ${last}`);
  } finally {
    m.destroy();
  }
});
