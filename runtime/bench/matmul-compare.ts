// Scratch comparison of matmul tilings in one process: alternates tilings per shape, best of `rounds`.
// node .build-perf/runtime/bench/matmul-compare.js [rounds] [filter]
import type { MatmulShape, MatmulTiling } from '../../compiler/kernels/matmul.js';
import { defaultTiling } from '../../compiler/kernels/matmul.js';
import { Gpu } from '../gpu/device.js';
import { checkMatmul, measureMatmul } from './matmul.js';

const shapes: Array<[string, MatmulShape]> = [];
function model(tag: string, M: number, C: number, F: number, V: number) {
  shapes.push([`${tag} qkv fwd`, { m: M, n: 3 * C, k: C, bias: true }]);
  shapes.push([`${tag} fc fwd`, { m: M, n: F, k: C, bias: true, activation: 'gelu' }]);
  shapes.push([`${tag} proj fwd`, { m: M, n: C, k: F, bias: true }]);
  shapes.push([`${tag} fc dx`, { m: M, n: C, k: F, transB: true }]);
  shapes.push([`${tag} proj dx`, { m: M, n: F, k: C, transB: true }]);
  shapes.push([`${tag} fc dW`, { m: C, n: F, k: M, transA: true, accumulate: true }]);
  shapes.push([`${tag} proj dW`, { m: F, n: C, k: M, transA: true, accumulate: true }]);
  shapes.push([`${tag} head fwd`, { m: M, n: V, k: C, transB: true }]);
  shapes.push([`${tag} head dx`, { m: M, n: C, k: V }]);
  shapes.push([`${tag} head dW`, { m: V, n: C, k: M, transA: true, accumulate: true }]);
}
model('qs', 1024, 64, 256, 256);
model('small', 1024, 256, 1024, 256);
shapes.push(['sq512', { m: 512, n: 512, k: 512 }]);
shapes.push(['sq1024', { m: 1024, n: 1024, k: 1024 }]);

export const candidates: Record<string, MatmulTiling> = {
  old: defaultTiling,
  sg16x4: { tm: 16, tn: 4, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg16x2: { tm: 16, tn: 2, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg16x8: { tm: 16, tn: 8, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg24x4: { tm: 24, tn: 4, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg32x2: { tm: 32, tn: 2, wgX: 8, wgY: 1, layout: 'subgroup' },
  sg8x8: { tm: 8, tn: 8, wgX: 8, wgY: 1, layout: 'subgroup' },
};

async function main() {
  const rounds = Number(process.argv[2] ?? 3);
  const filter = process.argv[3] ?? '';
  const only = process.argv[4]?.split(',');
  const gpu = await Gpu.open(process.env.MM_DAWN_FLAGS ? { dawnFlags: process.env.MM_DAWN_FLAGS.split(' ') } : {});
  const names = Object.keys(candidates).filter((n) => !only || only.includes(n) || n === 'old');
  console.log(`| shape | ${names.join(' | ')} |`);
  console.log(`|---|${names.map(() => '---:').join('|')}|`);
  for (const [label, s] of shapes) {
    if (filter && !label.includes(filter)) continue;
    const best: Record<string, number> = {};
    for (const n of names) {
      const err = await checkMatmul(gpu, s, candidates[n]);
      if (!(err <= 1e-4)) best[n] = NaN;
    }
    for (let r = 0; r < rounds; r++) {
      for (const n of names) {
        if (Number.isNaN(best[n])) continue;
        const g = (await measureMatmul(gpu, s, candidates[n], 100, 2)).gflops;
        best[n] = Math.max(best[n] ?? 0, g);
      }
    }
    console.log(`| ${label} ${s.m}×${s.n}×${s.k} | ${names.map((n) => best[n]!.toFixed(2)).join(' | ')} |`);
  }
  gpu.destroy();
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
