import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../../compiler/graph/ir.js';
import { addLmHead, headChunkRows, HEAD_CHUNK_BYTES, vocabParts } from '../../../compiler/graph/lm-head.js';
import { lowerGraph } from '../../../compiler/lower/compile.js';
import { IGNORE_INDEX, linearCrossEntropyReference } from '../../../compiler/reference/crossentropy.js';
import { randomArray, rng } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// The LM head + cross-entropy as the model builds it (graph/lm-head.ts), chunked over tokens or
// not, lowered alone and run on the GPU against the unchunked f64 reference: the mean loss, dx and
// the accumulated dW. Errors are relative to the largest magnitude of each reference tensor.
const TOL = 2e-4;

interface HeadCase { N: number; C: number; V: number; chunkRows?: number; gradScale: number; /** Vocabulary rows per part of W (graph/lm-head.ts vocabParts). */ partRows?: number }

function headPlan(s: HeadCase) {
  const g = new Graph('lm_head');
  g.tensor('x', [s.N, s.C], 'input');
  g.tensor('W', [s.V, s.C], 'param', { init: { kind: 'zeros' } });
  g.tensor('dW', [s.V, s.C], 'grad');
  g.tensor('dx', [s.N, s.C], 'output');
  g.tensor('targets', [s.N], 'input', { dtype: 'u32' });
  g.tensor('loss', [2], 'output');
  const parts = s.partRows ? { parts: vocabParts(s.V, s.C, undefined, s.partRows) } : {};
  const head = addLmHead(g, { N: s.N, C: s.C, V: s.V, gradScale: s.gradScale, ...(s.chunkRows ? { chunkRows: s.chunkRows } : {}), ...parts },
    { x: 'x', W: 'W', dW: 'dW', dx: 'dx', targets: 'targets', loss: 'loss' });
  head.backward();
  return { ...lowerGraph(g), graph: g };
}

function inputs(s: HeadCase, seed: number) {
  const r = rng(seed);
  // Rows 1, 4, 7, ... ignored; targets include the first and last logit.
  const targets = Uint32Array.from({ length: s.N }, (_, n) => (n % 3 === 1 ? IGNORE_INDEX : n % 5 === 0 ? s.V - 1 : n % 7 === 0 ? 0 : Math.floor(r() * s.V)));
  return { x: randomArray(s.N * s.C, seed + 1, 2), W: randomArray(s.V * s.C, seed + 2, 1), targets };
}

const relErr = (got: Float32Array, ref: Float32Array) => {
  const scale = ref.reduce((a, v) => Math.max(a, Math.abs(v)), 0) || 1;
  let e = 0;
  for (let i = 0; i < ref.length; i++) e = Math.max(e, Math.abs(got[i]! - ref[i]!) / scale);
  return Number.isNaN(e) ? Infinity : e;
};

async function runHead(s: HeadCase, seed = 5, perturb?: (W: Float32Array) => void) {
  const { plan, graph } = headPlan(s);
  const inp = inputs(s, seed);
  const ex = await PlanExecutor.create(await testGpu(), plan);
  try {
    const W = inp.W.slice();
    perturb?.(W);
    ex.write('x', inp.x);
    ex.write('W', W);
    ex.write('targets', inp.targets);
    ex.write('dW', new Float32Array(s.V * s.C));
    ex.run('train_step');
    const [loss, dx, dW] = [await ex.read('loss'), await ex.read('dx'), await ex.read('dW')];
    const ref = linearCrossEntropyReference(s.N, s.C, s.V, inp.x, inp.W, inp.targets, s.gradScale);
    return {
      graph, plan, loss: loss[0]!,
      err: { mean: Math.abs(loss[0]! - ref.mean) / ref.mean, scale: Math.abs(loss[1]! - s.gradScale / ref.count) / (s.gradScale / ref.count), dx: relErr(dx, ref.dx), dW: relErr(dW, ref.dW) },
    };
  } finally {
    ex.destroy();
  }
}

const cases: Array<[string, HeadCase]> = [
  ['odd shapes, chunks of 64 rows (64, 64, 37)', { N: 165, C: 13, V: 37, chunkRows: 64, gradScale: 1 }],
  ['odd shapes, unchunked', { N: 165, C: 13, V: 37, gradScale: 0.5 }],
  ['one chunk smaller than its row count', { N: 50, C: 7, V: 301, chunkRows: 64, gradScale: 1 }],
  ["GPT-2's vocabulary (50257), chunked by the default budget", { N: 200, C: 12, V: 50257, gradScale: 0.25 }],
  ['odd shapes, vocabulary in parts of 128 rows (128, 128, 45), token chunks of 64', { N: 165, C: 13, V: 301, chunkRows: 64, partRows: 128, gradScale: 1 }],
  ['odd shapes, vocabulary in parts of 192 rows (192, 109), one token chunk', { N: 50, C: 7, V: 301, partRows: 192, gradScale: 0.5 }],
  ["GPT-2's vocabulary (50257) in 4 parts of 16384 rows, token chunks of 64", { N: 150, C: 12, V: 50257, chunkRows: 64, partRows: 16384, gradScale: 0.25 }],
];
for (const [name, s] of cases) {
  test(`chunked LM head + cross-entropy vs the reference: ${name}`, async () => {
    const r = await runHead(s);
    for (const [k, v] of Object.entries(r.err)) assert.ok(v <= TOL, `${k} error ${v.toExponential(2)}`);
  });
}

test('the default chunking keeps every logits buffer under the budget and no buffer holds N×V logits', () => {
  const s: HeadCase = { N: 200, C: 12, V: 50257, gradScale: 1 };
  assert.ok(4 * s.N * s.V > HEAD_CHUNK_BYTES);
  const R = headChunkRows(s.N, s.V);
  assert.equal(R, 128);
  const { plan, graph } = headPlan(s);
  for (const b of plan.buffers) assert.ok(b.bytes <= HEAD_CHUNK_BYTES, `${b.name} ${b.bytes}`);
  assert.equal(plan.programs.train_step!.filter((d) => d.label?.startsWith('lm_head.dW')).length, 2);
  assert.match(graph.notes.join('\n'), /2 chunks of 128 rows/);
  // A small vocabulary keeps the unchunked head.
  assert.equal(headChunkRows(512, 256), 512);
  assert.throws(() => headChunkRows(512, 256, 100), /multiple of 64/);
});

test('chunked and unchunked heads give the same loss, within f32 summation order', async () => {
  const a = await runHead({ N: 165, C: 13, V: 37, chunkRows: 64, gradScale: 1 });
  const b = await runHead({ N: 165, C: 13, V: 37, gradScale: 1 });
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * Math.abs(b.loss), `${a.loss} vs ${b.loss}`);
});

test('a wrong weight is caught by the chunked head check (the test can fail)', async () => {
  const r = await runHead({ N: 165, C: 13, V: 37, chunkRows: 64, gradScale: 1 }, 5, (W) => { W[3 * 13 + 2]! += 1; });
  assert.ok(r.err.mean > TOL && r.err.dW > TOL, JSON.stringify(r.err));
});

test('vocabulary parts: equal aligned parts under the binding limit, one part when the matrix fits', () => {
  // GPT-2 small's wte (50257 × 768, 147.2 MiB) under WebGPU's 128 MiB: two parts.
  assert.deepEqual(vocabParts(50257, 768), [{ v0: 0, rows: 25129 }, { v0: 25129, rows: 25128 }]);
  assert.deepEqual(vocabParts(50257, 64), [{ v0: 0, rows: 50257 }]);
  // Width 13: parts start on multiples of 64 rows (64 × 13 floats = 13 × 256 bytes).
  const p = vocabParts(301, 13, 4 * 13 * 100);
  assert.deepEqual(p, [{ v0: 0, rows: 64 }, { v0: 64, rows: 64 }, { v0: 128, rows: 64 }, { v0: 192, rows: 64 }, { v0: 256, rows: 45 }]);
  for (const q of p) assert.ok(4 * q.rows * 13 <= 4 * 13 * 100);
  assert.throws(() => vocabParts(301, 13, undefined, 100), /multiple of 64/);
  assert.throws(() => vocabParts(301, 13, 4 * 13 * 10), /holds no 64 rows/);
});

test('a vocabulary in parts binds each part of W and dW as its own view, and no buffer holds N×V logits', () => {
  const s: HeadCase = { N: 150, C: 12, V: 50257, chunkRows: 64, partRows: 16384, gradScale: 1 };
  const { plan, graph } = headPlan(s);
  const bound = new Set(plan.programs.train_step!.flatMap((d) => d.buffers));
  for (let k = 0; k < 4; k++) {
    const rows = k < 3 ? 16384 : 50257 - 3 * 16384;
    assert.ok(bound.has(`W.rows${16384 * k}_${16384 * k + rows}`) && bound.has(`dW.rows${16384 * k}_${16384 * k + rows}`), `part ${k}`);
  }
  assert.ok(!bound.has('W') && !bound.has('dW'), 'the whole W is never bound');
  assert.equal(plan.programs.train_step!.filter((d) => d.label?.startsWith('lm_head.dW')).length, 3 * 4);
  assert.match(graph.notes.join('\n'), /4 parts of 16384 rows/);
  for (const b of plan.buffers) if (b.name.startsWith('logits') || b.name.startsWith('dlogits')) assert.ok(b.bytes <= 4 * 64 * 16384, `${b.name} ${b.bytes}`);
});

test('a wrong weight in the last vocabulary part is caught (the parted check can fail)', async () => {
  const r = await runHead({ N: 165, C: 13, V: 301, chunkRows: 64, partRows: 128, gradScale: 1 }, 5, (W) => { W[290 * 13 + 2]! += 1; });
  assert.ok(r.err.mean > TOL && r.err.dW > TOL, JSON.stringify(r.err));
});
