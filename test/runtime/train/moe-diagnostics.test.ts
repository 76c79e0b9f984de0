// The training loss's parts and the MoE load diagnostics (issue 18): on a tiny model with an odd
// expert count, the GPU's window summary against the TS reference fed with each step's statistics;
// dead experts under a label router that never picks some experts; total − lm = the aux terms.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { moeStatsName, moeWindowName } from '../../../compiler/graph/moe-outputs.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { STAT } from '../../../compiler/reference/moe.js';
import { loadSummaryReference, SUMMARY_FIELDS, windowAddReference, windowLength } from '../../../compiler/reference/moe-diagnostics.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { readTrainReadout } from '../../../runtime/train/readout.js';
import { testGpu } from '../../helpers/gpu.js';
import { batch, moeConfig, spec } from './moe-helpers.js';

const E = 5;

test('the load summary of a window of steps equals the reference; the window restarts after each readout', async () => {
  const moe = moeConfig({ experts: E, top: 2, dropless: false, capacity: 1.0, balance: 0.1, zloss: 0.01 });
  const compiled = compileGpt2(spec, moeBlock(spec, moe));
  assert.deepEqual(compiled.moeDiagnostics?.layers.map((l) => [l.layer, l.experts]), [[0, E], [1, E]]);
  assert.deepEqual(compiled.moeDiagnostics?.fields, SUMMARY_FIELDS);
  const m = await GpuModel.create(await testGpu(), compiled);
  try {
    m.initParams(3);
    const windows = moe.layers.map(() => new Float32Array(windowLength(E)));
    for (let step = 1; step <= 3; step++) {
      const b = batch(10 + step);
      m.trainStep(step, 1e-2, 1, [b]);
      for (const [i, l] of moe.layers.entries()) windowAddReference(windows[i]!, await m.ex.read(moeStatsName(l)), E);
    }
    const r = await readTrainReadout(m);
    assert.equal(r.moe?.length, 2);
    for (const [i, d] of r.moe!.entries()) {
      const want = loadSummaryReference(windows[i]!, E);
      const got = SUMMARY_FIELDS.map((k) => (k === 'steps' || k === 'overload' || k === 'dead' || k === 'dropped' || k === 'entropy' || k === 'balance' || k === 'z' ? d[k] : d.tokens[k as keyof typeof d.tokens]));
      SUMMARY_FIELDS.forEach((k, j) => assert.ok(Math.abs(got[j]! - want[j]!) <= 1e-6 * Math.max(1, Math.abs(want[j]!)), `layer ${d.layer} ${k}: GPU ${got[j]} vs reference ${want[j]}`));
      assert.deepEqual(d.counts, Array.from(want.subarray(SUMMARY_FIELDS.length)));
      assert.equal(d.steps, 3);
      // Every token makes top-2 assignments: three steps of batch·context tokens.
      assert.equal(d.counts.reduce((a, b) => a + b, 0), 3 * spec.batch * spec.context * 2);
      assert.ok(d.overload >= 1 && d.tokens.min <= d.tokens.p10 && d.tokens.p10 <= d.tokens.median && d.tokens.median <= d.tokens.p90 && d.tokens.p90 <= d.tokens.max);
      assert.ok(d.entropy > 0 && d.entropy <= Math.log(E) + 1e-6);
    }
    // The summary restarted the window: nothing is counted until the next step.
    for (const l of moe.layers) assert.ok((await m.ex.read(moeWindowName(l))).every((v) => v === 0));
    m.trainStep(4, 1e-2, 1, [batch(20)]);
    const again = await readTrainReadout(m);
    assert.equal(again.moe![0]!.steps, 1);
    assert.equal(again.moe![0]!.counts.reduce((a, b) => a + b, 0), spec.batch * spec.context * 2);
  } finally {
    m.destroy();
  }
});

test('a router that never picks some experts counts them dead over the window, and only over it', async () => {
  // Label routing, top 1: label i goes to expert i mod E, so labels {0, 1, 2} leave experts 3 and 4 idle.
  const moe = moeConfig({ experts: E, top: 1, router: 'label', label: 'language', balance: 0, zloss: 0 });
  const m = await GpuModel.create(await testGpu(), compileGpt2(spec, moeBlock(spec, moe)));
  try {
    m.initParams(1);
    const steps = [[0, 2], [2, 0], [1, 1]];
    steps.forEach((labels, i) => m.trainStep(i + 1, 1e-2, 1, [{ ...batch(i), labels: new Uint32Array(labels) }]));
    const r = await readTrainReadout(m);
    for (const d of r.moe!) {
      assert.equal(d.dead, 2, `layer ${d.layer}`);
      assert.deepEqual(d.counts, [1, 1, 1, 0, 0].map((w) => w * 2 * spec.context));
      assert.equal(d.tokens.min, 0);
      assert.equal(d.tokens.max, 2 * spec.context);
      assert.ok(Math.abs(d.overload - (2 * spec.context) / ((6 * spec.context) / E)) < 1e-6);
    }
    // The next window sees one label: four experts dead, all tokens on one (a collapsed layer).
    m.trainStep(4, 1e-2, 1, [{ ...batch(9), labels: new Uint32Array([3, 3]) }]);
    const next = await readTrainReadout(m);
    assert.equal(next.moe![0]!.dead, 4);
    assert.equal(next.moe![0]!.maxShare, 1);
  } finally {
    m.destroy();
  }
});

test('the logged loss is the language-model loss: total − lm is the weighted balance and z terms', async () => {
  // The first test's settings: its kernels are compiled already.
  const moe = moeConfig({ experts: E, top: 2, dropless: false, capacity: 1.0, balance: 0.1, zloss: 0.01 });
  const m = await GpuModel.create(await testGpu(), compileGpt2(spec, moeBlock(spec, moe)));
  try {
    m.initParams(5);
    const b = batch(7);
    m.gradients(b.tokens, b.targets);
    const r = await readTrainReadout(m);
    assert.ok(r.losses.parts);
    // The reference balance term from each layer's statistics: λ · E · Σ_e f_e · P_e.
    let want = 0;
    let wantZ = 0;
    for (const l of moe.layers) {
      const s = await m.ex.read(moeStatsName(l));
      const NK = spec.batch * spec.context * 2;
      let bal = 0;
      for (let e = 0; e < E; e++) bal += (s[STAT.counts + e]! / NK) * s[STAT.counts + E + e]!;
      want += 0.1 * E * bal;
      wantZ += 0.01 * s[STAT.z]!;
    }
    assert.ok(want > 0 && wantZ > 0);
    assert.ok(Math.abs(r.losses.total - r.losses.lm - want - wantZ) < 2e-6, `total − lm ${r.losses.total - r.losses.lm} vs balance + z terms ${want + wantZ}`);
    assert.ok(Math.abs(r.losses.balance - want) < 2e-6, `balance ${r.losses.balance} vs ${want}`);
    assert.ok(Math.abs(r.losses.z - wantZ) < 1e-7, `z ${r.losses.z} vs ${wantZ}`);
    // The LM part alone is the cross-entropy the evaluation computes on the same batch.
    const ev = await m.evalLoss([b]);
    assert.ok(Math.abs(ev.loss - r.losses.lm) < 1e-5, `eval ${ev.loss} vs lm ${r.losses.lm}`);
  } finally {
    m.destroy();
  }
});

test("under expert choice every expert takes c of each group: the busiest expert's share is the fair share c/G, not 1", async () => {
  // 10 tokens, 3 experts, top 1, capacity 1.5: c = ceil(1.5 · 10 / 3) = 5, so 1.5 experts per token on average.
  const moe = moeConfig({ experts: 3, top: 1, choice: 'expert', capacity: 1.5, dropless: false, balance: 0, zloss: 0 });
  const compiled = compileGpt2(spec, moeBlock(spec, moe));
  assert.deepEqual(compiled.routing.map((r) => r.expertsPerToken), [1.5, 1.5]);
  const m = await GpuModel.create(await testGpu(), compiled);
  try {
    m.initParams(2);
    m.trainStep(1, 1e-2, 1, [batch(3)]);
    const r = await readTrainReadout(m);
    for (const d of r.moe!) {
      assert.deepEqual(d.counts, [5, 5, 5], `layer ${d.layer}`);
      assert.ok(Math.abs(d.maxShare - 0.5) < 1e-6, `layer ${d.layer}: share ${d.maxShare}`);
    }
  } finally {
    m.destroy();
  }
});
