// A/B of two builds of moec in one process, alternating, so machine noise hits both alike: the way
// a kernel change is measured before it is kept (docs/PERFORMANCE.md).
//   npx tsc --outDir .build-a   (at the old commit; see below)   npx tsc --outDir .build-b   (new)
//   node dist/runtime/bench/ab-builds.js step .build-a .build-b [rounds=6] [moe|dense]
//   node dist/runtime/bench/ab-builds.js gmm .build-a .build-b [rounds=5]
// `step`: the quickstart MoE trial (or its dense K× model) compiled by each build with the adapter's
// lowering, trained on the same batch, 8 steps per turn, best turn of `rounds`; also the loss after 3
// steps of each (equal when the change is exact). `gmm`: the grouped expert matmul's subgroup form of
// each build at the quickstart MoE's four shapes, with the largest difference of their outputs.
// An old commit's build: `git archive OLD | tar -x -C /tmp/old && cd /tmp/old && ln -s
// "$PWD/node_modules" . && npx tsc --outDir "$OLDPWD/.build-a"` (from the repository root).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TrialConfig } from '../../compiler/frontend/index.js';
import type { GroupedMatmulShape } from '../../compiler/kernels/moe-grouped.js';
import { PlanBuilder } from '../../compiler/plan/builder.js';
import type { CompiledTrial } from '../../compiler/lower/compile.js';
import { PlanExecutor } from '../executor/executor.js';
import { Gpu } from '../gpu/device.js';
import { loweringFor } from '../gpu/lowering.js';
import { GpuModel } from '../train/model.js';
import { runBench } from './entry.js';
import { quickstartMoe } from './moe.js';

const load = async <T>(build: string, module: string): Promise<T> => (await import(pathToFileURL(path.resolve(build, module)).href)) as T;

async function step(gpu: Gpu, builds: string[], rounds: number, dense: boolean): Promise<void> {
  const c: TrialConfig = quickstartMoe();
  if (dense) c.model = { ...c.model, moe: null, ffn: c.model.ffn * c.model.moe!.top };
  const models: GpuModel[] = [];
  for (const b of builds) {
    const { compileTrial } = await load<{ compileTrial: (c: TrialConfig, n: string, o: object) => CompiledTrial }>(b, 'compiler/lower/compile.js');
    const m = await GpuModel.create(gpu, compileTrial(c, 'ab', loweringFor(gpu)), b);
    m.initParams(1);
    models.push(m);
  }
  try {
    const n = c.train.batch * c.data[c.train.data]!.context;
    let x = 1;
    const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % 256;
    const batch = [{ tokens: Uint32Array.from({ length: n }, next), targets: Uint32Array.from({ length: n }, next) }];
    const losses: number[] = [];
    for (const m of models) {
      for (let s = 1; s <= 3; s++) m.trainStep(s, 1e-4, 1, batch);
      losses.push(await m.trainLoss());
    }
    const best = models.map(() => Infinity);
    for (let r = 0; r < rounds; r++) {
      for (const [i, m] of models.entries()) {
        const t0 = performance.now();
        for (let s = 0; s < 8; s++) m.trainStep(4 + s, 1e-4, 1, batch);
        await m.trainLoss();
        best[i] = Math.min(best[i]!, (performance.now() - t0) / 8);
      }
    }
    console.log(`${dense ? 'dense K×' : 'MoE'} step: ${builds.map((b, i) => `${b} ${best[i]!.toFixed(1)} ms`).join(', ')}; first / second ${(best[0]! / best[1]!).toFixed(2)}; loss after 3 steps ${losses.map((l) => l.toFixed(6)).join(' vs ')}`);
  } finally {
    for (const m of models) m.destroy();
  }
}

async function gmm(gpu: Gpu, builds: string[], rounds: number): Promise<void> {
  type Gen = { groupedMatmulSubgroupKernel: (n: string, g: GroupedMatmulShape) => Parameters<PlanBuilder['dispatch']>[1] };
  const gens = await Promise.all(builds.map((b) => load<Gen>(b, 'compiler/kernels/moe-grouped.js')));
  const rows = 2048;
  const E = 4;
  const offsets = Uint32Array.from([0, 600, 1100, 1500, 2048]);
  const perm = Uint32Array.from({ length: rows }, (_, i) => (i * 7919) % rows);
  const shapes: [string, GroupedMatmulShape][] = [
    ['c_fc forward (gathered, bias, GELU, pre saved)', { rows, n: 256, k: 64, experts: E, gather: { top: 2 }, bias: true, activation: 'gelu', savePre: true }],
    ['c_proj forward (bias)', { rows, n: 64, k: 256, experts: E, bias: true }],
    ["c_proj dx (transposed, × gelu')", { rows, n: 256, k: 64, experts: E, transB: true, actGrad: 'gelu' }],
    ['c_fc dx (transposed)', { rows, n: 64, k: 256, experts: E, transB: true }],
  ];
  for (const [label, g] of shapes) {
    const names = ['A', 'B', 'C', 'offsets', ...(g.gather ? ['perm'] : []), ...(g.bias ? ['bias'] : []), ...(g.actGrad ? ['H'] : []), ...(g.savePre ? ['pre'] : [])];
    const size: Record<string, number> = { A: (g.gather ? rows / 2 : rows) * g.k, B: E * g.k * g.n, C: rows * g.n, offsets: E + 1, perm: rows, bias: E * g.n, H: rows * g.n, pre: rows * g.n };
    const exs: PlanExecutor[] = [];
    for (const gen of gens) {
      const b = new PlanBuilder('gmm');
      for (const nm of names) b.buffer(nm, size[nm]!, nm === 'C' || nm === 'pre' ? 'output' : 'input');
      b.dispatch('main', gen.groupedMatmulSubgroupKernel('gmm', g), names);
      const ex = await PlanExecutor.create(gpu, b.build());
      for (const nm of names) ex.write(nm, nm === 'offsets' ? offsets : nm === 'perm' ? perm : Float32Array.from({ length: size[nm]! }, (_, i) => Math.sin(i) * 0.5));
      exs.push(ex);
    }
    try {
      const best = exs.map(() => Infinity);
      for (let r = 0; r < rounds; r++) {
        for (const [i, ex] of exs.entries()) {
          ex.run('main');
          await ex.finish();
          const t0 = performance.now();
          for (let j = 0; j < 10; j++) ex.run('main');
          await ex.finish();
          best[i] = Math.min(best[i]!, (performance.now() - t0) / 10);
        }
      }
      const [c0, c1] = await Promise.all(exs.map((e) => e.read('C')));
      const diff = c0!.reduce((m, v, i) => Math.max(m, Math.abs(v - c1![i]!)), 0);
      console.log(`${label}: ${builds.map((b, i) => `${b} ${best[i]!.toFixed(2)} ms`).join(', ')}; first / second ${(best[0]! / best[1]!).toFixed(2)}; max |difference| ${diff}`);
    } finally {
      for (const ex of exs) ex.destroy();
    }
  }
}

async function main(): Promise<void> {
  const [mode, a, b, roundsArg, model] = process.argv.slice(2);
  if (!mode || !a || !b || !['step', 'gmm'].includes(mode)) throw new Error('usage: ab-builds.js step|gmm BUILD_A BUILD_B [rounds] [moe|dense]');
  const gpu = await Gpu.open();
  try {
    console.log(`# ${gpu.describe()}; ${new Date().toISOString()}`);
    if (mode === 'step') await step(gpu, [a, b], Number(roundsArg ?? 6), model === 'dense');
    else await gmm(gpu, [a, b], Number(roundsArg ?? 5));
  } finally {
    gpu.destroy();
  }
}

runBench(main);
