import { test } from 'node:test';
import { loweringFor } from '../../../runtime/gpu/lowering.js';
import assert from 'node:assert/strict';
import { castF16Kernel } from '../../../compiler/kernels/cast.js';
import { defaultTiling, matmulKernel, type MatmulShape, type MatmulTiling, subgroupTiling } from '../../../compiler/kernels/matmul.js';
import { type MatmulF16, withF16Operands } from '../../../compiler/kernels/matmul-f16.js';
import { PlanBuilder } from '../../../compiler/plan/builder.js';
import { fromF16Bits, roundArrayF16, roundF16, toF16Bits } from '../../../compiler/reference/f16.js';
import { matmulReference } from '../../../compiler/reference/matmul.js';
import { maxRelError, randomArray } from '../../../compiler/reference/random.js';
import { PlanExecutor } from '../../../runtime/executor/executor.js';
import { testGpu } from '../../helpers/gpu.js';

// f16 matmul operands (train.precision f16): the kernel's products of f16-rounded values,
// accumulated in f32, against the f64 reference on the same rounded values.

test('f16 rounding on the host: exact values, ties to even, subnormals, overflow', () => {
  assert.equal(toF16Bits(1), 0x3c00);
  assert.equal(toF16Bits(65504), 0x7bff);
  assert.equal(toF16Bits(65520), 0x7c00, 'rounds past the largest finite value to inf');
  assert.equal(toF16Bits(-2), 0xc000);
  assert.equal(toF16Bits(1 + 2 ** -11), 0x3c00, 'a tie goes to the even mantissa');
  assert.equal(toF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(toF16Bits(2 ** -24), 0x0001, 'the smallest subnormal');
  assert.equal(toF16Bits(2 ** -25), 0, 'half of it ties to even: zero');
  assert.equal(fromF16Bits(0x3555), roundF16(1 / 3));
  assert.equal(roundF16(0.1), 0.0999755859375);
});

// Padded to an even length: buffer writes come in whole 4-byte words.
const f16Bits = (a: Float32Array) => {
  const out = new Uint16Array(a.length + (a.length % 2));
  a.forEach((v, i) => { out[i] = toF16Bits(v); });
  return out;
};

async function checkF16(s: MatmulShape, f16: MatmulF16, tiling: MatmulTiling): Promise<number> {
  const batch = s.batch ?? 1;
  const a = randomArray(batch * s.m * s.k, 1);
  const bm = randomArray((s.broadcastB ? 1 : batch) * s.k * s.n, 2);
  const bias = randomArray(s.n, 3);
  const c0 = randomArray(batch * s.m * s.n, 4);
  const b = new PlanBuilder('f16');
  const half = (n: number) => Math.ceil(n / 2);
  const names = [
    b.buffer('A', f16.a === 'stored' ? half(a.length) : a.length, 'input'),
    b.buffer('B', f16.b === 'stored' ? half(bm.length) : bm.length, 'input'),
    b.buffer('C', c0.length, 'output'),
  ];
  if (s.bias) names.push(b.buffer('bias', s.n, 'input'));
  const k = withF16Operands(matmulKernel('mm', s, tiling), f16);
  assert.equal(k.features?.includes('shader-f16') ?? false, f16.a === 'stored' || f16.b === 'stored');
  b.dispatch('main', k, names);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    ex.write('A', f16.a === 'stored' ? f16Bits(a) : a);
    ex.write('B', f16.b === 'stored' ? f16Bits(bm) : bm);
    ex.write('C', c0);
    if (s.bias) ex.write('bias', bias);
    ex.run('main');
    return maxRelError(await ex.read('C'), matmulReference(s, roundArrayF16(a), roundArrayF16(bm), bias, c0));
  } finally {
    ex.destroy();
  }
}

const shapes: MatmulShape[] = [
  { m: 17, n: 33, k: 65, bias: true },
  { m: 16, n: 36, k: 64, bias: true, activation: 'gelu' },
  { m: 9, n: 31, k: 20, transB: true },
  { m: 12, n: 8, k: 16, transB: true },
  { m: 21, n: 19, k: 17, transA: true, accumulate: true },
  { m: 20, n: 16, k: 8, transA: true, accumulate: true },
];
const modes: MatmulF16[] = [{ a: 'round', b: 'stored' }, { a: 'round', b: 'round' }, { a: 'stored', b: 'stored' }];

test('f16 matmul operands (stored or rounded at load) equal the reference on f16-rounded inputs, both tilings', async () => {
  const gpu = await testGpu();
  const tilings: [string, MatmulTiling][] = [['tile', defaultTiling]];
  if (loweringFor(gpu).subgroupMatmul) tilings.push(['subgroup', subgroupTiling]);
  for (const [tname, tiling] of tilings) {
    for (const s of shapes) {
      for (const f16 of modes) {
        const err = await checkF16(s, f16, tiling);
        assert.ok(err <= 1e-4, `${tname} ${JSON.stringify(s)} ${JSON.stringify(f16)}: max rel error ${err}`);
      }
    }
  }
});

test('the rounding is real: the f16 kernel differs from the f32 product by more than f32 rounding', async () => {
  const s: MatmulShape = { m: 17, n: 33, k: 65 };
  const err = await checkF16(s, { a: 'round', b: 'round' }, defaultTiling);
  assert.ok(err <= 1e-4, `max rel error ${err}`);
  const a = randomArray(s.m * s.k, 1);
  const bm = randomArray(s.k * s.n, 2);
  assert.ok(maxRelError(matmulReference(s, roundArrayF16(a), roundArrayF16(bm)), matmulReference(s, a, bm)) > 1e-4, 'rounded inputs move the product');
});

test('out of f16 range the kernels round to ±inf as IEEE does (pack2x16float alone is indeterminate there)', async () => {
  const gpu = await testGpu();
  const tilings: MatmulTiling[] = [defaultTiling];
  if (loweringFor(gpu).subgroupMatmul) tilings.push(subgroupTiling);
  // C = A · [1 1 1 1] with k = 1 and A rounded at load: each row of C is A's value rounded to f16.
  const a = Float32Array.from([70000, 1, 65519, -1e6, 65520, -65504, 0.1, 3e38]);
  const s: MatmulShape = { m: 8, n: 4, k: 1 };
  const ones = new Float32Array(4).fill(1);
  const want = Array.from(a, roundF16).flatMap((v) => [v, v, v, v]);
  assert.deepEqual(Array.from(a, roundF16).slice(0, 6), [Infinity, 1, 65504, -Infinity, Infinity, -65504]);
  for (const tiling of tilings) {
    const b = new PlanBuilder('f16-range');
    const names = [b.buffer('A', 8, 'input'), b.buffer('B', 4, 'input'), b.buffer('C', 32, 'output')];
    b.dispatch('main', withF16Operands(matmulKernel('mm', s, tiling), { a: 'round', b: 'round' }), names);
    const ex = await PlanExecutor.create(gpu, b.build());
    try {
      ex.write('A', a);
      ex.write('B', ones);
      ex.write('C', new Float32Array(32));
      ex.run('main');
      assert.deepEqual([...(await ex.read('C'))], want, JSON.stringify(tiling));
    } finally {
      ex.destroy();
    }
  }
});

test('the f16 cast writes each segment rounded, at its own offset, and nothing else', async () => {
  const src = randomArray(300, 5, 3);
  src.set([70000, -1e6, 65519, 65520], 64); // past f16's range: ±inf, as IEEE rounding gives
  const segments = [{ src: 0, dst: 0, count: 37 }, { src: 64, dst: 128, count: 130 }, { src: 256, dst: 384, count: 1 }];
  const b = new PlanBuilder('cast');
  b.buffer('src', 300, 'input');
  b.buffer('dst', 256, 'output'); // 512 halfs
  b.dispatch('main', castF16Kernel('cast', segments), ['src', 'dst']);
  const ex = await PlanExecutor.create(await testGpu(), b.build());
  try {
    ex.write('src', src);
    ex.write('dst', new Uint16Array(512).fill(0x7e00)); // NaN sentinel
    ex.run('main');
    const got = new Uint16Array(await ex.readBytes('dst'));
    const want = new Uint16Array(512).fill(0x7e00);
    for (const sg of segments) for (let i = 0; i < sg.count; i++) want[sg.dst + i] = toF16Bits(src[sg.src + i]!);
    assert.deepEqual(got, want);
  } finally {
    ex.destroy();
  }
});
