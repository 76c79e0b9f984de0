import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countParams } from '../../../compiler/frontend/params.js';
import type { Model, MoeConfig } from '../../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { activeParams, moeBlock, moeStatsName } from '../../../compiler/graph/moe.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { CompileError, compileGpt2, compileTrial } from '../../../compiler/lower/compile.js';
import { summarize } from '../../../compiler/lower/summary.js';
import { STAT } from '../../../compiler/reference/moe.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { batch, moeConfig, spec, variants } from './moe-helpers.js';

// Whole-model checks of MoE layers on the GPU: frozen and random routers, read-back statistics,
// parameter counts, and training (gradients: moe-gradcheck-*.test.ts).

const model = (moe: MoeConfig | null): Model => ({
  name: 'm', layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, dropout: 0, vocab: spec.vocab, context: spec.context, moe,
});

test("the plan's parameter count (total and active) equals the front end's", () => {
  for (const [, o] of variants) {
    const moe = moeConfig(o);
    if (moe.dispatch === 'soft') continue; // below
    const c = compileGpt2(spec, moeBlock(spec, moe));
    const want = countParams(model(moe));
    assert.deepEqual({ total: c.layout.count, active: activeParams(c.graph, moe) }, want, JSON.stringify(o));
  }
  const dense = compileGpt2(spec);
  assert.deepEqual({ total: dense.layout.count, active: activeParams(dense.graph, null) }, countParams(model(null)));
});

test("Soft MoE's parameter count: Φ (C × E·S) per MoE layer in place of a router; every expert active", () => {
  for (const [, o] of variants) {
    const moe = moeConfig(o);
    if (moe.dispatch !== 'soft') continue;
    const c = compileGpt2(spec, moeBlock(spec, moe));
    const { width: C, ffn: F } = spec;
    const E = moe.experts;
    const expert = moe.expert === 'linear' ? C * C + C : 2 * C * F + F + C;
    const want = countParams(model(null)).total + moe.layers.length * (E * expert + C * E * moe.slots - (2 * C * F + F + C));
    assert.deepEqual({ total: c.layout.count, active: activeParams(c.graph, moe) }, { total: want, active: want }, JSON.stringify(o));
    assert.deepEqual(c.graph.get(`h.${moe.layers[0]}.mlp.soft.phi`).shape, [C, E * moe.slots]);
  }
});

test("Soft MoE's parameter count equals the front end's", () => {
  for (const [, o] of variants) {
    const moe = moeConfig(o);
    if (moe.dispatch !== 'soft') continue;
    const c = compileGpt2(spec, moeBlock(spec, moe));
    assert.deepEqual({ total: c.layout.count, active: activeParams(c.graph, moe) }, countParams(model(moe)), JSON.stringify(o));
  }
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
  const moe = moeConfig({ router: 'random', experts: 4, balance: 0, zloss: 0 });
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

const quickstart = fileURLToPath(new URL('../../../../pipelines/quickstart.moe', import.meta.url));

test('compileTrial lowers the quickstart MoE trials and matches their parameter counts', () => {
  const r = loadPipeline(quickstart);
  assert.ok(r.ok && r.trials.length === 2, r.diagnostics.map((d) => d.message).join('; '));
  for (const t of r.trials) {
    const c = compileTrial(t.config, t.id);
    assert.equal(summarize(c).params, t.params_count.total);
    assert.equal(activeParams(c.graph, t.config.model.moe), t.params_count.active);
    assert.ok(c.plan.buffers.some((b) => b.name === moeStatsName(0) && b.role === 'output'));
  }
});

test('compileTrial refuses MoE settings it does not lower, naming the setting', () => {
  const base = loadPipeline(quickstart).trials[0]!.config;
  const cases: [Partial<MoeConfig>, string][] = [
    [{ noise: 0.1, router: 'random' }, 'noise'], [{ second: 'sampled', router: 'random' }, 'second'],
    [{ shared: 1, activation: 'relu' }, 'shared'],
    // Soft MoE: settings that only a sparse layer has are refused, not ignored.
    [{ dispatch: 'soft', router: 'frozen' }, 'router'], [{ dispatch: 'soft', unit: 'sequence' }, 'unit'], [{ dispatch: 'soft', scope: 'global' }, 'scope'],
    [{ dispatch: 'soft', shared: 1 }, 'shared'], [{ dispatch: 'soft', noise: 0.5 }, 'noise'], [{ dispatch: 'soft', second: 'sampled' }, 'second'],
    [{ dispatch: 'soft', zloss: 0.01 }, 'zloss'], [{ dispatch: 'soft', gate: 'sigmoid' }, 'gate'], [{ dispatch: 'soft', normalize: true }, 'normalize'],
  ];
  for (const [o, field] of cases) {
    const config = structuredClone(base);
    Object.assign(config.model.moe!, o);
    assert.throws(() => compileTrial(config), (e: unknown) => e instanceof CompileError && e.ptr === `/model/moe/${field}`, JSON.stringify(o));
  }
  const f16 = structuredClone(base);
  f16.train.precision = 'f16';
  assert.throws(() => compileTrial(f16), (e: unknown) => e instanceof CompileError && e.ptr === '/train/precision', 'f16 with MoE layers');
});

test('compileTrial lowers Soft MoE (dispatch soft, slots 2) and writes its statistics in the sparse layout', async () => {
  const base = loadPipeline(quickstart).trials[0]!.config;
  const config = structuredClone(base);
  Object.assign(config.model.moe!, { dispatch: 'soft', slots: 2 });
  const c = compileTrial(config);
  assert.ok(c.plan.buffers.some((b) => b.name === moeStatsName(0) && b.role === 'output'));
  assert.ok(!c.plan.buffers.some((b) => b.name === 'h0.moe.sel'), 'no routing decisions to read');
  const moe = moeConfig({ dispatch: 'soft', slots: 2, zloss: 0 });
  const m = await GpuModel.create(await testGpu(), compileGpt2(spec, moeBlock(spec, moe)));
  try {
    m.initParams(3);
    const b = batch(8);
    for (let step = 1; step <= 3; step++) m.trainStep(step, 1e-2, 1, [b]);
    for (const l of [0, 1]) {
      const stats = await m.ex.read(moeStatsName(l));
      const counts = stats.subarray(STAT.counts, STAT.counts + 3);
      const N = spec.batch * spec.context;
      assert.ok(Math.abs(counts.reduce((a, c) => a + c, 0) - N) < 1e-3, `combine weight sums to the ${N} tokens: ${[...counts]}`);
      for (let e = 0; e < 3; e++) assert.ok(Math.abs(stats[STAT.counts + 3 + e]! - counts[e]! / N) < 1e-6, 'mean score = share');
      assert.deepEqual([stats[STAT.balance], stats[STAT.z], stats[STAT.dropped]], [0, 0, 0]);
      assert.ok(stats[STAT.entropy]! > 0 && stats[STAT.entropy]! <= Math.log(3) + 1e-5, `entropy ${stats[STAT.entropy]}`);
    }
    const loss = await m.trainLoss();
    assert.ok(Number.isFinite(loss), `loss ${loss}`);
  } finally {
    m.destroy();
  }
});

test('moec check warns that Soft MoE is not causal, at the dispatch line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moe-soft-'));
  try {
    const file = join(dir, 'soft.moe');
    const text = readFileSync(quickstart, 'utf8').replace('    balance 0.01\n', '    balance 0.01\n    dispatch soft\n    slots 2\n');
    writeFileSync(file, text);
    const r = loadPipeline(file);
    assert.ok(r.ok, r.diagnostics.map((d) => d.message).join('; '));
    const w = r.diagnostics.filter((d) => d.severity === 'warning' && /not causal/.test(d.message));
    assert.equal(w.length, 1, r.diagnostics.map((d) => d.message).join('; '));
    const line = text.slice(0, w[0]!.span!.start).split('\n').length;
    assert.equal(text.split('\n')[line - 1]!.trim(), 'dispatch soft');
    for (const t of r.trials) assert.equal(compileTrial(t.config, t.id).plan.buffers.filter((b) => /^h\d+\.moe\.stats$/.test(b.name)).length, 2);
    // A sparse pipeline gets no such warning.
    assert.ok(!loadPipeline(quickstart).diagnostics.some((d) => /not causal/.test(d.message)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
