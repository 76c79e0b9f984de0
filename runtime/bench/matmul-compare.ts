// Same-process comparison of matmul tilings at the shapes a training step runs (the quickstart and
// 'small' bench models, forward and both backward forms) and 512³ / 1024³. Tilings alternate per
// shape and each keeps its best of `rounds` measurements, so machine noise hits both alike.
//   node .build-perf/runtime/bench/matmul-compare.js [rounds=3] [shape filter] [tiling,tiling,...]
import { runBench } from './entry.js';
import type { MatmulShape, MatmulTiling } from '../../compiler/kernels/matmul.js';
import { defaultTiling, subgroupTiling } from '../../compiler/kernels/matmul.js';
import { Gpu } from '../gpu/device.js';
import { checkMatmul, measureMatmul } from './matmul.js';

/** The matmuls of one GPT-2 block and the LM head, as compiler/graph/gpt2.ts emits them. */
function modelShapes(tag: string, M: number, C: number, F: number, V: number): Array<[string, MatmulShape]> {
  return [
    [`${tag} qkv fwd`, { m: M, n: 3 * C, k: C, bias: true }],
    [`${tag} fc fwd`, { m: M, n: F, k: C, bias: true, activation: 'gelu' }],
    [`${tag} proj fwd`, { m: M, n: C, k: F, bias: true }],
    [`${tag} qkv dx`, { m: M, n: C, k: 3 * C, transB: true }],
    [`${tag} fc dx`, { m: M, n: C, k: F, transB: true }],
    [`${tag} proj dx`, { m: M, n: F, k: C, transB: true }],
    [`${tag} qkv dW`, { m: C, n: 3 * C, k: M, transA: true, accumulate: true }],
    [`${tag} fc dW`, { m: C, n: F, k: M, transA: true, accumulate: true }],
    [`${tag} proj dW`, { m: F, n: C, k: M, transA: true, accumulate: true }],
    [`${tag} head fwd`, { m: M, n: V, k: C, transB: true }],
    [`${tag} head dx`, { m: M, n: C, k: V }],
    [`${tag} head dW`, { m: V, n: C, k: M, transA: true, accumulate: true }],
  ];
}

export const compareShapes: Array<[string, MatmulShape]> = [
  ...modelShapes('quickstart', 1024, 64, 256, 256),
  ...modelShapes('small', 1024, 256, 1024, 256),
  ['square 512³', { m: 512, n: 512, k: 512 }],
  ['square 1024³', { m: 1024, n: 1024, k: 1024 }],
];

const tilings: Record<string, MatmulTiling> = {
  old: defaultTiling,
  subgroup: subgroupTiling,
  sg16x4w16: { tm: 16, tn: 4, wgX: 16, wgY: 1, layout: 'subgroup' },
  sg16x4w32: { tm: 16, tn: 4, wgX: 32, wgY: 1, layout: 'subgroup' },
  sg8x4: { tm: 8, tn: 4, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg16x2: { tm: 16, tn: 2, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg16x8: { tm: 16, tn: 8, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg24x4: { tm: 24, tn: 4, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg32x2: { tm: 32, tn: 2, wgX: 8, wgY: 1, layout: 'subgroup' },
  t16x8: { tm: 16, tn: 8, wgX: 8, wgY: 8 },
  t8x16: { tm: 8, tn: 16, wgX: 8, wgY: 8 },
  t16x16: { tm: 16, tn: 16, wgX: 8, wgY: 8 },
};

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const filter = process.argv[3] ?? '';
  const names = (process.argv[4] ?? 'old,subgroup').split(',');
  for (const n of names) if (!tilings[n]) throw new Error(`unknown tiling '${n}' (${Object.keys(tilings).join(', ')})`);
  const gpu = await Gpu.open();
  try {
    console.log(`# ${gpu.describe()}; GFLOP/s, best of ${rounds}, alternating; ${new Date().toISOString()}\n`);
    console.log(`| shape | m×n×k | ${names.join(' | ')} | ${names.slice(1).map((n) => `${n} / ${names[0]}`).join(' | ')} |`);
    console.log(`|---|---|${names.map(() => '---:').join('|')}|${names.slice(1).map(() => '---:').join('|')}|`);
    for (const [label, s] of compareShapes) {
      if (filter && !label.includes(filter)) continue;
      const best: Record<string, number> = {};
      for (const n of names) {
        const err = await checkMatmul(gpu, s, tilings[n]);
        if (!(err <= 1e-4)) throw new Error(`${n} is wrong at ${label}: error ${err}`);
        best[n] = 0;
      }
      for (let r = 0; r < rounds; r++) {
        for (const n of names) best[n] = Math.max(best[n]!, (await measureMatmul(gpu, s, tilings[n], 150, 2)).gflops);
      }
      const ratios = names.slice(1).map((n) => `${(best[n]! / best[names[0]!]!).toFixed(2)}×`);
      console.log(`| ${label} | ${s.m}×${s.n}×${s.k} | ${names.map((n) => best[n]!.toFixed(2)).join(' | ')} | ${ratios.join(' | ')} |`);
    }
  } finally {
    gpu.destroy();
  }
}

runBench(main);
