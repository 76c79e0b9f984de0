import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerNormBackwardKernel, layerNormForwardKernel, layerNormParamGradKernel, type LayerNormShape } from '../../../compiler/kernels/layernorm.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { layerNormBackwardReference, layerNormForwardReference } from '../../../compiler/reference/layernorm.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

const tol = 1e-4;

function plan(s: LayerNormShape) {
  const { rows, C } = s;
  const b = new PlanBuilder('layernorm');
  for (const n of ['x', 'r', 'dout']) b.buffer(n, rows * C, 'input');
  for (const n of ['w', 'b']) b.buffer(n, C, 'param');
  for (const n of ['sum', 'out', 'dres']) b.buffer(n, rows * C, 'activation');
  b.buffer('stats', 2 * rows, 'activation');
  for (const n of ['dw', 'db']) b.buffer(n, C, 'grad');
  b.dispatch('fwd', layerNormForwardKernel('ln_fwd', s), ['x', 'r', 'w', 'b', 'sum', 'out', 'stats']);
  b.dispatch('bwd', layerNormBackwardKernel('ln_bwd', s), ['dout', 'sum', 'stats', 'w', 'dres']);
  b.dispatch('bwd', layerNormParamGradKernel('ln_dwdb', s), ['dout', 'sum', 'stats', 'dw', 'db']);
  return b.build();
}

interface Errors { sum: number; out: number; stats: number; dres: number; dw: number; db: number }

/** Runs forward then backward (accumulating into nonzero grads) and returns errors against the reference. */
async function check(s: LayerNormShape, perturb?: (x: Float32Array) => void, raw?: Float32Array[]): Promise<Errors> {
  const { rows, C } = s;
  // An offset mean and a spread of scales, so the mean subtraction matters.
  const x = randomArray(rows * C, 11, 2).map((v, i) => v + 0.5 + (i % 3));
  const r = randomArray(rows * C, 12);
  const w = randomArray(C, 13).map((v) => v + 1);
  const bb = randomArray(C, 14);
  const dout = randomArray(rows * C, 15);
  const dres0 = randomArray(rows * C, 16);
  const dw0 = randomArray(C, 17);
  const db0 = randomArray(C, 18);
  const ex = await PlanExecutor.create(await testGpu(), plan(s));
  try {
    const xg = x.slice();
    perturb?.(xg);
    ex.write('x', xg);
    ex.write('r', r);
    ex.write('w', w);
    ex.write('b', bb);
    ex.write('dout', dout);
    ex.write('dres', dres0);
    ex.write('dw', dw0);
    ex.write('db', db0);
    ex.run('fwd');
    ex.run('bwd');
    for (const n of ['sum', 'out', 'stats', 'dres', 'dw', 'db']) raw?.push(await ex.read(n));
    const ref = layerNormForwardReference(rows, C, x, r, w, bb, s.eps);
    const dres = dres0.slice();
    const dw = dw0.slice();
    const db = db0.slice();
    layerNormBackwardReference(rows, C, dout, ref.sum, ref.stats, w, dres, dw, db);
    return {
      sum: maxRelError(await ex.read('sum'), ref.sum),
      out: maxRelError(await ex.read('out'), ref.out),
      stats: maxRelError(await ex.read('stats'), ref.stats),
      dres: maxRelError(await ex.read('dres'), dres),
      dw: maxRelError(await ex.read('dw'), dw),
      db: maxRelError(await ex.read('db'), db),
    };
  } finally {
    ex.destroy();
  }
}

const shapes: LayerNormShape[] = [
  { rows: 7, C: 37 },
  { rows: 33, C: 130 },
  { rows: 3, C: 5, wg: 32 },
  // One invocation per row: rows not a multiple of the workgroup, C=1, odd C, vec4 C.
  { rows: 7, C: 37, perRow: 'invocation' },
  { rows: 70, C: 1, perRow: 'invocation' },
  { rows: 65, C: 37, perRow: 'invocation' },
  { rows: 65, C: 64, perRow: 'invocation' },
  { rows: 33, C: 300, perRow: 'invocation', wg: 8 },
];
for (const s of shapes) {
  test(`layernorm forward+backward rows=${s.rows} C=${s.C}${s.perRow ? ` perRow=${s.perRow}` : ''}`, async () => {
    const e = await check(s);
    for (const [k, v] of Object.entries(e)) assert.ok(v <= tol, `${k} error ${v}`);
  });
}

test('reference layernorm normalises a hand-checked row', () => {
  const { out, stats } = layerNormForwardReference(1, 4, new Float32Array([1, 2, 3, 4]), new Float32Array(4), new Float32Array([1, 1, 1, 1]), new Float32Array(4), 0);
  assert.ok(Math.abs(stats[0]! - 2.5) < 1e-6);
  assert.ok(Math.abs(stats[1]! - 1 / Math.sqrt(1.25)) < 1e-6);
  assert.ok(Math.abs(out[0]! + 1.5 / Math.sqrt(1.25)) < 1e-6);
});

test('reference layernorm backward matches finite differences', () => {
  const rows = 2;
  const C = 5;
  const x = randomArray(rows * C, 1);
  const r = new Float32Array(rows * C);
  const w = randomArray(C, 2).map((v) => v + 1);
  const bb = randomArray(C, 3);
  const dout = randomArray(rows * C, 4);
  const loss = (xx: Float32Array, ww: Float32Array) => {
    const { out } = layerNormForwardReference(rows, C, xx, r, ww, bb);
    return out.reduce((a, v, i) => a + v * dout[i]!, 0);
  };
  const { sum, stats } = layerNormForwardReference(rows, C, x, r, w, bb);
  const dres = new Float32Array(rows * C);
  const dw = new Float32Array(C);
  const db = new Float32Array(C);
  layerNormBackwardReference(rows, C, dout, sum, stats, w, dres, dw, db);
  const h = 1e-2;
  for (const i of [0, 3, 7]) {
    const xp = x.slice(); xp[i]! += h;
    const xm = x.slice(); xm[i]! -= h;
    assert.ok(Math.abs((loss(xp, w) - loss(xm, w)) / (2 * h) - dres[i]!) < 2e-3, `dx[${i}]`);
  }
  for (const c of [0, 4]) {
    const wp = w.slice(); wp[c]! += h;
    const wm = w.slice(); wm[c]! -= h;
    assert.ok(Math.abs((loss(x, wp) - loss(x, wm)) / (2 * h) - dw[c]!) < 2e-3, `dw[${c}]`);
  }
});

test('a perturbed input is caught by the layernorm check (the test can fail)', async () => {
  const e = await check({ rows: 7, C: 37 }, (x) => { x[40]! += 0.5; });
  assert.ok(e.out > tol && e.dres > tol && e.dw > tol, JSON.stringify(e));
});

test('a perturbed input is caught by the per-invocation layernorm check', async () => {
  const e = await check({ rows: 65, C: 64, perRow: 'invocation' }, (x) => { x[64 * 3 + 5]! += 0.5; });
  assert.ok(e.out > tol && e.dres > tol && e.dw > tol, JSON.stringify(e));
});

test('per-invocation layernorm is bit-deterministic', async () => {
  for (const C of [37, 64]) {
    const a: Float32Array[] = [];
    const b: Float32Array[] = [];
    await check({ rows: 65, C, perRow: 'invocation' }, undefined, a);
    await check({ rows: 65, C, perRow: 'invocation' }, undefined, b);
    a.forEach((x, i) => assert.deepEqual(x, b[i]));
  }
});
