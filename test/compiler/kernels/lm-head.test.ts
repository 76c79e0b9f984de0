import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../../compiler/graph/ir.js';
import { addLmHead, headChunkRows, HEAD_CHUNK_BYTES } from '../../../compiler/graph/lm-head.js';
import { lowerGraph } from '../../../compiler/lower/compile.js';
import { IGNORE_INDEX, linearCrossEntropyReference } from '../../../compiler/reference/crossentropy.js';
import { randomArray, rng } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// The LM head + cross-entropy as the model builds it (graph/lm-head.ts), chunked over tokens or
// not, lowered alone and run on the GPU against the unchunked f64 reference: the mean loss, dx and
// the accumulated dW. Errors are relative to the largest magnitude of each reference tensor.
const TOL = 2e-4;

interface HeadCase { N: number; C: number; V: number; chunkRows?: number; gradScale: number }

function headPlan(s: HeadCase) {
  const g = new Graph('lm_head');
  g.tensor('x', [s.N, s.C], 'input');
  g.tensor('W', [s.V, s.C], 'param', { init: { kind: 'zeros' } });
  g.tensor('dW', [s.V, s.C], 'grad');
  g.tensor('dx', [s.N, s.C], 'output');
  g.tensor('targets', [s.N], 'input', { dtype: 'u32' });
  g.tensor('loss', [2], 'output');
  const head = addLmHead(g, { N: s.N, C: s.C, V: s.V, gradScale: s.gradScale, ...(s.chunkRows ? { chunkRows: s.chunkRows } : {}) },
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
