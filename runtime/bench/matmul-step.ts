// A whole training step with the 8×8-tile matmul against the subgroup matmul, in one process,
// alternating, best of `rounds` (the same model lowered portably and with subgroupMatmul).
//   node .build-perf/runtime/bench/matmul-step.js [rounds=2] [model indices=0,1]
import { runBench } from './entry.js';
import { compileGpt2 } from '../../compiler/lower/compile.js';
import type { LoweringOptions } from '../../compiler/lower/kernels.js';
import { Gpu } from '../gpu/device.js';
import { benchModels, benchTraining } from './train.js';

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 2);
  const which = (process.argv[3] ?? '0,1').split(',').map(Number);
  const gpu = await Gpu.open();
  const tilings: Array<[string, LoweringOptions]> = [
    ['8×8 tile', {}],
    ['subgroup', { subgroupMatmul: true }],
  ];
  try {
    for (const i of which) {
      const { name, spec } = benchModels(false)[i]!;
      const best = tilings.map(() => Infinity);
      const profiles: string[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const [t, [label, lowering]] of tilings.entries()) {
          const res = await benchTraining(gpu, spec, 2, (s) => compileGpt2(s, undefined, lowering));
          best[t] = Math.min(best[t]!, res.msPerStep);
          profiles[t] = `${label}: ${(res.profile ?? []).slice(0, 4).map((p) => `${p.kind} ${(100 * p.share).toFixed(0)}%`).join(', ')}`;
        }
      }
      console.log(`${name}: ${tilings.map(([l], t) => `${l} ${best[t]!.toFixed(1)} ms/step`).join(', ')}; ${(best[0]! / best[1]!).toFixed(2)}×`);
      for (const p of profiles) console.log(`  ${p}`);
    }
  } finally {
    gpu.destroy();
  }
}

runBench(main);
