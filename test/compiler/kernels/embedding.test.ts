import { test } from 'node:test';
import assert from 'node:assert/strict';
import { embeddingBackwardWpeKernel, embeddingBackwardWteKernel, embeddingBackwardWteRowsKernel, embeddingForwardKernel, type EmbeddingShape } from '../../../compiler/kernels/embedding.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { embeddingBackwardReference, embeddingForwardReference } from '../../../compiler/reference/embedding.js';
import { maxRelError, randomArray, rng } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

const tol = 1e-4;

/** `rows`: use embeddingBackwardWteRowsKernel (with that channel chunk) for dwte. */
async function check(s: EmbeddingShape, perturb?: (tokens: Uint32Array) => void, rows?: { chunk: number; wg?: number }, raw?: Float32Array[]): Promise<{ out: number; dwte: number; dwpe: number }> {
  const { B, T, C, V } = s;
  const b = new PlanBuilder('embedding');
  b.buffer('tokens', B * T, 'input');
  b.buffer('wte', V * C, 'param');
  b.buffer('wpe', T * C, 'param');
  b.buffer('out', B * T * C, 'activation');
  b.buffer('dout', B * T * C, 'input');
  b.buffer('dwte', V * C, 'grad');
  b.buffer('dwpe', T * C, 'grad');
  b.dispatch('fwd', embeddingForwardKernel('emb_fwd', s), ['tokens', 'wte', 'wpe', 'out']);
  const dwteKernel = rows ? embeddingBackwardWteRowsKernel('emb_dwte', s, rows.wg, rows.chunk) : embeddingBackwardWteKernel('emb_dwte', s);
  b.dispatch('bwd', dwteKernel, ['tokens', 'dout', 'dwte']);
  b.dispatch('bwd', embeddingBackwardWpeKernel('emb_dwpe', s), ['dout', 'dwpe']);
  const r = rng(41);
  // Repeated tokens (V small relative to B·T) so several positions accumulate into one row.
  const tokens = Uint32Array.from({ length: B * T }, () => Math.floor(r() * V));
  const wte = randomArray(V * C, 42);
  const wpe = randomArray(T * C, 43);
  const dout = randomArray(B * T * C, 44);
  const dwte = randomArray(V * C, 45);
  const dwpe = randomArray(T * C, 46);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    const tg = tokens.slice();
    perturb?.(tg);
    ex.write('tokens', tg);
    ex.write('wte', wte);
    ex.write('wpe', wpe);
    ex.write('dout', dout);
    ex.write('dwte', dwte);
    ex.write('dwpe', dwpe);
    ex.run('fwd');
    ex.run('bwd');
    raw?.push(await ex.read('dwte'));
    const out = embeddingForwardReference(B, T, C, tokens, wte, wpe);
    embeddingBackwardReference(B, T, C, tokens, dout, dwte, dwpe);
    return { out: maxRelError(await ex.read('out'), out), dwte: maxRelError(await ex.read('dwte'), dwte), dwpe: maxRelError(await ex.read('dwpe'), dwpe) };
  } finally {
    ex.destroy();
  }
}

for (const s of [
  { B: 2, T: 7, C: 37, V: 11 },
  { B: 3, T: 33, C: 130, V: 50 },
  { B: 1, T: 5, C: 3, V: 2 },
]) {
  test(`embedding B=${s.B} T=${s.T} C=${s.C} V=${s.V}`, async () => {
    const e = await check(s);
    for (const [k, v] of Object.entries(e)) assert.ok(v <= tol, `${k} error ${v}`);
  });
}

test('reference embedding: a repeated token accumulates both gradients', () => {
  const dwte = new Float32Array(4);
  const dwpe = new Float32Array(4);
  embeddingBackwardReference(1, 2, 2, new Uint32Array([1, 1]), new Float32Array([1, 2, 3, 4]), dwte, dwpe);
  assert.deepEqual([...dwte], [0, 0, 4, 6]);
  assert.deepEqual([...dwpe], [1, 2, 3, 4]);
  const out = embeddingForwardReference(1, 2, 2, new Uint32Array([1, 0]), new Float32Array([1, 2, 3, 4]), new Float32Array([10, 20, 30, 40]));
  assert.deepEqual([...out], [13, 24, 31, 42]);
});

test('a perturbed token is caught by the embedding check (the test can fail)', async () => {
  const e = await check({ B: 2, T: 7, C: 37, V: 11 }, (t) => { t[3] = (t[3]! + 1) % 11; });
  assert.ok(e.out > tol && e.dwte > tol, JSON.stringify(e));
});

// The by-vocab-row dwte kernel: odd C (scalar), C % 4 == 0 (vec4), C=1, V=5 and V=300 (more than one
// workgroup, not a multiple of it), channel chunks that do not divide the row.
for (const [s, chunk, wg] of [
  [{ B: 2, T: 7, C: 37, V: 11 }, 256, 64],
  [{ B: 3, T: 33, C: 130, V: 50 }, 16, 64],
  [{ B: 1, T: 5, C: 1, V: 5 }, 256, 64],
  [{ B: 4, T: 9, C: 64, V: 300 }, 256, 64],
  [{ B: 4, T: 9, C: 36, V: 300 }, 8, 32],
  [{ B: 2, T: 11, C: 37, V: 300 }, 5, 64],
] as Array<[EmbeddingShape, number, number]>) {
  test(`embedding dwte by rows B=${s.B} T=${s.T} C=${s.C} V=${s.V} chunk=${chunk}`, async () => {
    const e = await check(s, undefined, { chunk, wg });
    for (const [k, v] of Object.entries(e)) assert.ok(v <= tol, `${k} error ${v}`);
  });
}

test('a perturbed token is caught by the by-rows dwte check, which is bit-deterministic', async () => {
  const s = { B: 4, T: 9, C: 64, V: 300 };
  const e = await check(s, (t) => { t[3] = (t[3]! + 1) % 300; }, { chunk: 256 });
  assert.ok(e.dwte > tol, JSON.stringify(e));
  const a: Float32Array[] = [];
  const b: Float32Array[] = [];
  await check({ B: 2, T: 11, C: 37, V: 300 }, undefined, { chunk: 5 }, a);
  await check({ B: 2, T: 11, C: 37, V: 300 }, undefined, { chunk: 5 }, b);
  assert.deepEqual(a[0], b[0]);
});
