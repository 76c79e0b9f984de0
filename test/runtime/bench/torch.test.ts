import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countParams } from '../../../compiler/frontend/params.js';
import type { Model, MoeConfig } from '../../../compiler/frontend/types.js';
import { randomArray } from '../../../compiler/reference/random.js';
import { readSafetensors, writeSafetensors, type TensorData } from '../../../runtime/store/safetensors.js';
import {
  isSkipped, torchBench, torchCheck, torchConfig, torchModel, torchParamShapes, torchSkipReason,
  type TorchBenchConfig, type TorchCheckResult, type TorchModel,
} from '../../../runtime/bench/torch.js';

const moeConfig: MoeConfig = {
  every: 1, experts: 4, top: 2, unit: 'token', prefix: null, scope: 'layer', router: 'learned', label: null, dim: 32,
  gate: 'softmax-topk', normalize: true, noise: 0, noiseDist: 'gaussian', capacity: 1.25, dropless: true, balance: 0.01, zloss: 0, shared: 0,
  expert: 'mlp', activation: 'gelu', second: 'top', dispatch: 'sparse', slots: 1, layers: [0, 1],
};
const dense: Model = { name: 'tiny', layers: 2, width: 32, heads: 2, ffn: 128, dropout: 0.1, vocab: 64, context: 16, moe: null };
const moe: Model = { ...dense, moe: moeConfig };
const train = { batch: 2, lr: 1e-3, wd: 0.1, betas: [0.9, 0.95] as [number, number], eps: 1e-8, clip: 1, seed: 1 };
const config = (m: Model, batch = train.batch): TorchBenchConfig => torchConfig(m, { ...train, batch }, { steps: 3, warmup: 1 });

const skip = (await torchSkipReason()) ?? false;

test('the PyTorch parameter list has the compiler’s parameter count', () => {
  for (const m of [dense, moe, { ...moe, moe: { ...moeConfig, layers: [1] } }]) {
    const total = torchParamShapes(torchModel(m)).reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(total, countParams(m).total);
  }
});

test('a routing design bench.py lacks is refused, not run as something else', () => {
  assert.throws(() => torchModel({ ...moe, moe: { ...moeConfig, unit: 'sequence' } }), /moe\.unit sequence/);
  assert.throws(() => torchModel({ ...moe, moe: { ...moeConfig, dropless: false } }), /moe\.dropless false/);
});

for (const [name, m] of [['dense', dense], ['MoE', moe]] as const) {
  test(`bench.py times the ${name} training step`, { skip }, async () => {
    const r = await torchBench(config(m));
    assert.ok(!isSkipped(r), 'torch was found, so the bench must run');
    assert.equal(r.steps, 3);
    assert.ok(r.threads >= 1);
    assert.equal(r.params, countParams(m).total);
    assert.ok(r.tokens_per_s > 0 && Number.isFinite(r.tokens_per_s));
    assert.ok(r.ms_per_step_min > 0 && r.ms_per_step_min <= r.ms_per_step_median && r.ms_per_step_min <= r.ms_per_step);
    assert.ok(r.omp_wait_policy.length > 0);
    assert.ok(Math.abs(r.tokens_per_s - (2 * 16 * 1000) / r.ms_per_step) < 1e-6 * r.tokens_per_s);
    assert.match(r.torch, /^\d+\.\d+/);
    assert.ok(r.blas.length > 0 && r.matmul_gflops > 0);
    // Random tokens: the loss starts and stays near ln(vocab).
    for (const loss of [r.loss_first, r.loss_last]) assert.ok(Math.abs(loss - Math.log(64)) < 0.2, `loss ${loss}`);
  });
}

/** GPT-2-like initial weights: unit LayerNorm gains, zero biases, small uniform matrices. */
function initialWeights(m: TorchModel, seed: number): Map<string, TensorData> {
  const out = new Map<string, TensorData>();
  torchParamShapes(m).forEach(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = /ln_\d\.weight$|ln_f\.weight$/.test(name) ? new Float32Array(n).fill(1)
      : shape.length === 1 ? randomArray(n, seed + i, 0.01)
      : randomArray(n, seed + i, 0.05);
    out.set(name, { shape, data });
  });
  return out;
}

function tokens(batch: number, T: number, seed: number, ignoreRow?: number): Uint32Array {
  const r = randomArray(2 * batch * T, seed);
  const t = Uint32Array.from(r, (x) => Math.floor((x + 1) * 32) % 64);
  if (ignoreRow !== undefined) t.fill(0xffffffff, batch * T + ignoreRow * T, batch * T + (ignoreRow + 1) * T);
  return t;
}

interface CheckRun {
  summary: TorchCheckResult;
  out: Map<string, TensorData>;
}

async function check(dir: string, tag: string, m: Model, weights: Map<string, TensorData>, toks: Uint32Array, batch: number): Promise<CheckRun> {
  const w = join(dir, `${tag}.weights.safetensors`);
  const t = join(dir, `${tag}.tokens.bin`);
  const o = join(dir, `${tag}.out.safetensors`);
  writeSafetensors(w, weights);
  writeFileSync(t, toks);
  const r = await torchCheck(w, t, config(m, batch), o);
  assert.ok(!isSkipped(r), 'torch was found, so the check must run');
  return { summary: r, out: readSafetensors(o).tensors };
}

// Three --check runs shared by the tests below (each run pays torch's start-up):
//   dense: batch 2 with row 1's targets all ignored; one: row 0 alone, batch 1;
//   moe: the dense weights copied into every expert; layer 0's router zero (uniform probabilities,
//   so its balance loss is exactly Σ f_i = 1), layer 1's random.
let runs: Promise<{ dense: CheckRun; one: CheckRun; moe: CheckRun }> | undefined;
function checkRuns() {
  return (runs ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moec-torch-test-'));
    try {
      const dw = initialWeights(torchModel(dense), 7);
      const mw = new Map<string, TensorData>();
      for (const [name, shape] of torchParamShapes(torchModel(moe))) {
        const n = shape.reduce((a, b) => a * b, 1);
        if (name === 'h.0.mlp.router.weight') mw.set(name, { shape, data: new Float32Array(n) });
        else if (name === 'h.1.mlp.router.weight') mw.set(name, { shape, data: randomArray(n, 17, 1) });
        else mw.set(name, dw.get(name.replace(/\.experts\.\d+\./, '.'))!);
      }
      const two = tokens(2, 16, 5, 1);
      const one = new Uint32Array([...two.subarray(0, 16), ...two.subarray(32, 48)]);
      return {
        dense: await check(dir, 'dense', dense, dw, two, 2),
        one: await check(dir, 'one', dense, dw, one, 1),
        moe: await check(dir, 'moe', moe, mw, two, 2),
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })());
}

test('bench.py --check: loss near ln(V) at init and a gradient for every weight', { skip }, async () => {
  const r = await checkRuns();
  for (const [m, { summary, out }] of [[dense, r.dense], [moe, r.moe]] as const) {
    const tm = torchModel(m);
    const loss = out.get('loss')!.data[0]!;
    const ce = out.get('loss.ce')!.data[0]!;
    const balance = out.get('loss.balance')!.data[0]!;
    assert.ok(Math.abs(ce - Math.log(64)) < 0.05, `ce ${ce}`);
    assert.ok(Math.abs(loss - (ce + (m.moe ? 0.01 * balance : 0))) < 1e-6);
    if (m.moe) {
      const [b0, b1] = [0, 1].map((l) => out.get(`loss.balance.${l}`)!.data[0]!);
      assert.ok(Math.abs(b0! - 1) < 1e-6, `layer 0 balance ${b0}`);
      assert.ok(b1! > 0 && b1! <= 4 && Math.abs(b0! + b1! - balance) < 1e-6, `layer 1 balance ${b1}, sum ${balance}`);
    } else assert.equal(balance, 0);
    assert.equal(summary.loss, loss);
    const shapes = torchParamShapes(tm);
    assert.equal(summary.tensors, shapes.length);
    for (const [name, shape] of shapes) {
      const g = out.get(`grad.${name}`);
      assert.ok(g, `grad.${name} missing`);
      assert.deepEqual(g.shape, shape);
      assert.ok(g.data.every(Number.isFinite), `grad.${name} not finite`);
    }
    assert.equal(out.size, shapes.length + 3 + (m.moe ? 2 : 0));
    const nonzero = ['wte.weight', 'wpe.weight', 'h.0.attn.c_attn.weight', 'h.1.ln_2.weight', 'ln_f.bias', ...(m.moe ? ['h.0.mlp.router.weight', 'h.1.mlp.router.weight'] : [])];
    for (const name of nonzero) assert.ok(out.get(`grad.${name}`)!.data.some((x) => x !== 0), `grad.${name} is zero`);
  }
});

test('bench.py --check: ignored targets drop out of the mean, sequences stay independent', { skip }, async () => {
  const { dense: a, one: b } = await checkRuns();
  assert.ok(Math.abs(a.summary.ce - b.summary.ce) < 1e-5, `${a.summary.ce} vs ${b.summary.ce}`);
  for (const name of ['grad.h.1.mlp.c_fc.weight', 'grad.wte.weight']) {
    const ga = a.out.get(name)!.data;
    const gb = b.out.get(name)!.data;
    for (let i = 0; i < ga.length; i++) assert.ok(Math.abs(ga[i]! - gb[i]!) < 1e-6, `${name}[${i}]: ${ga[i]} vs ${gb[i]}`);
  }
});

test('bench.py --check: identical experts with renormalised gates compute the dense MLP', { skip }, async () => {
  // Any dispatch, permutation or combine error (a token sent to the wrong row, a gate weight
  // dropped or not renormalised) changes the output; with identical experts the routing cannot.
  const { dense: d, moe: e } = await checkRuns();
  assert.ok(Math.abs(d.summary.ce - e.summary.ce) < 1e-5, `${d.summary.ce} vs ${e.summary.ce}`);
  // The last MoE layer's experts share the dense gradient between them. (Not layer 0: the balance
  // loss of layer 1 reaches it through layer 1's router.)
  for (const p of ['c_fc.weight', 'c_proj.bias']) {
    const want = d.out.get(`grad.h.1.mlp.${p}`)!.data;
    const sum = new Float32Array(want.length);
    for (let x = 0; x < 4; x++) e.out.get(`grad.h.1.mlp.experts.${x}.${p}`)!.data.forEach((v, i) => (sum[i]! += v));
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(sum[i]! - want[i]!) < 1e-6 + 1e-3 * Math.abs(want[i]!), `${p}[${i}]: ${sum[i]} vs ${want[i]}`);
  }
});
