// Same-process comparison of the grouped expert weight-gradient kernels (moe_wgrad): the tiled form
// against subgroup tilings, at the shapes the quickstart MoE and 'small' models run (2048 slots over
// 4 experts, split unevenly as a router would). Forms alternate per shape and each keeps its best of
// `rounds` measurements, so machine noise hits all alike; each form is first checked against the
// tiled one on the same data.
//   node .build-wgrad/runtime/bench/moe-wgrad-compare.js [rounds=3] [shape filter] [form,form,...]
// With `step`, the whole quickstart MoE training step instead, lowered as on this adapter with
// moe_wgrad's tiled and subgroup forms, alternating, best of `rounds`:
//   node .build-wgrad/runtime/bench/moe-wgrad-compare.js step [rounds=3]
import { runBench } from './entry.js';
import { groupedWeightGradKernel, groupedWeightGradSubgroupKernel, type WeightGradShape } from '../../compiler/kernels/moe-grouped.js';
import { PlanBuilder } from '../../compiler/plan/builder.js';
import type { RowKernel } from '../../compiler/kernels/layernorm.js';
import type { PlanKernel } from '../../compiler/plan/types.js';
import { maxRelError, randomArray } from '../../compiler/reference/random.js';
import { compileTrial, gpt2SpecOf } from '../../compiler/lower/compile.js';
import { Gpu } from '../gpu/device.js';
import { loweringFor } from '../gpu/lowering.js';
import { PlanExecutor } from '../executor/executor.js';
import { quickstartMoe } from './moe.js';
import { GpuModel } from '../train/model.js';

const SLOTS = 2048;
const TOP = 2;
// 2048 slots over 4 experts; WGRAD_SIZES=a,b,c,d (summing to 2048) tries another split.
const SIZES = (process.env.WGRAD_SIZES ?? '640,560,480,368').split(',').map(Number);
if (SIZES.length !== 4 || SIZES.reduce((a, b) => a + b, 0) !== SLOTS) throw new Error(`WGRAD_SIZES must be 4 counts summing to ${SLOTS}`);

const shapes: Array<[string, WeightGradShape]> = [
  ['quickstart c_fc (gathered)', { k: 64, n: 256, experts: 4, gather: { top: TOP }, rows: SLOTS }],
  ['quickstart c_proj', { k: 256, n: 64, experts: 4, rows: SLOTS }],
  ['small c_fc (gathered)', { k: 256, n: 1024, experts: 4, gather: { top: TOP }, rows: SLOTS }],
  ['small c_proj', { k: 1024, n: 256, experts: 4, rows: SLOTS }],
];

const forms: Record<string, (g: WeightGradShape) => PlanKernel> = {
  old: (g) => groupedWeightGradKernel('wgrad', g),
  sg16x4: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 16, sn: 4 }),
  sg4x4: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 4, sn: 4 }),
  sg4x8: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 4, sn: 8 }),
  sg8x4: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 8, sn: 4 }),
  sg32x4: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 32, sn: 4 }),
  sg16x8: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 16, sn: 8 }),
  sg16x2: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 16, sn: 2 }),
  sg32x1: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 32, sn: 1 }),
  sg32x2: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 32, sn: 2 }),
  sg8x8: (g) => groupedWeightGradSubgroupKernel('wgrad', g, { sm: 8, sn: 8 }),
};

/** Seeded data for `g`: expert offsets, a shuffled slot → assignment permutation, A, D, dW. */
function dataFor(g: WeightGradShape): Record<string, Float32Array | Uint32Array> {
  const offsets = Uint32Array.from([0, ...SIZES.map((_, i) => SIZES.slice(0, i + 1).reduce((a, b) => a + b, 0))]);
  const perm = Uint32Array.from({ length: SLOTS }, (_, i) => i);
  const r = randomArray(SLOTS, 5);
  for (let i = SLOTS - 1; i > 0; i--) {
    const j = Math.floor(((r[i]! + 1) / 2) * (i + 1)) % (i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const tokens = g.gather ? SLOTS / TOP : SLOTS;
  return { A: randomArray(tokens * g.k, 1), D: randomArray(SLOTS * g.n, 2), offsets, perm, dW: new Float32Array(g.experts * g.k * g.n) };
}

async function executor(gpu: Gpu, kernel: PlanKernel, g: WeightGradShape, data: Record<string, Float32Array | Uint32Array>): Promise<PlanExecutor> {
  const b = new PlanBuilder('wgrad');
  const names = ['A', 'D', 'offsets', ...(g.gather ? ['perm'] : []), 'dW'];
  for (const n of names) b.buffer(n, data[n]!.length, n === 'dW' ? 'output' : 'input');
  b.dispatch('main', kernel, names);
  const ex = await PlanExecutor.create(gpu, b.build());
  for (const n of names) ex.write(n, data[n]!);
  return ex;
}

/** dW after one dispatch on zeros. */
async function result(gpu: Gpu, kernel: PlanKernel, g: WeightGradShape, data: Record<string, Float32Array | Uint32Array>): Promise<Float32Array> {
  const ex = await executor(gpu, kernel, g, data);
  try {
    ex.run('main');
    return await ex.read('dW');
  } finally {
    ex.destroy();
  }
}

/**
 * Per dispatch: wall milliseconds and CPU milliseconds (user + system of this process, which runs
 * lavapipe's threads; less disturbed by other processes than wall time), from back-to-back
 * dispatches in one submit lasting about `minMs`, best of `trials`.
 */
async function measure(ex: PlanExecutor, minMs = 150, trials = 2): Promise<{ wall: number; cpu: number }> {
  const time = async (reps: number) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    ex.run('main', reps);
    await ex.finish();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { wall: wall / reps, cpu: (c.user + c.system) / 1000 / reps };
  };
  const once = (await time(1)).wall;
  const reps = Math.max(1, Math.min(1 << 12, Math.round(minMs / Math.max(once, 0.01))));
  const best = { wall: Infinity, cpu: Infinity };
  for (let t = 0; t < trials; t++) {
    const r = await time(reps);
    best.wall = Math.min(best.wall, r.wall);
    best.cpu = Math.min(best.cpu, r.cpu);
  }
  return best;
}

/**
 * The quickstart MoE step with each moe_wgrad form (passed through the target as its subgroup form in turn):
 * both models built once, then `steps` steps of each in turn per round; wall and CPU ms per step
 * (CPU: this process, which runs lavapipe's threads), best of `rounds`.
 */
async function step(gpu: Gpu, rounds: number, steps = 5): Promise<void> {
  const cfg = quickstartMoe();
  const spec = gpt2SpecOf(cfg, 'quickstart MoE');
  const tiled = (n: string, s: WeightGradShape) => groupedWeightGradKernel(n, s);
  const variants: Array<[string, (n: string, s: WeightGradShape) => RowKernel]> = [
    ['tiled', tiled],
    ['subgroup', (n, s) => groupedWeightGradSubgroupKernel(n, s)],
  ];
  const n = spec.batch * spec.context;
  const batch = [{ tokens: Uint32Array.from({ length: n }, (_, i) => (i * 7919) % spec.vocab), targets: Uint32Array.from({ length: n }, (_, i) => (i * 104729 + 1) % spec.vocab) }];
  const models: GpuModel[] = [];
  try {
    for (const [, gen] of variants) {
      const m = await GpuModel.create(gpu, compileTrial(cfg, 'quickstart MoE', { ...loweringFor(gpu), kernels: { moe_wgrad: { portable: tiled, subgroup: gen } } }), 'wgrad step');
      m.initParams(1);
      for (let i = 1; i <= 3; i++) m.trainStep(i, 1e-4, 1, batch);
      await m.ex.finish();
      models.push(m);
    }
    const wall = variants.map(() => Infinity);
    const cpu = variants.map(() => Infinity);
    for (let r = 0; r < rounds; r++) {
      for (const [i, m] of models.entries()) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for (let k = 0; k < steps; k++) m.trainStep(4 + r * steps + k, 1e-4, 1, batch);
        await m.ex.finish();
        const c = process.cpuUsage(c0);
        wall[i] = Math.min(wall[i]!, (performance.now() - t0) / steps);
        cpu[i] = Math.min(cpu[i]!, (c.user + c.system) / 1000 / steps);
      }
    }
    const profiles = await Promise.all(models.map((m) => m.ex.profile('train_step', 3)));
    const wgradMs = profiles.map((p) => (p ?? []).filter((k) => k.kernel.startsWith('moe_wgrad')).reduce((a, k) => a + k.ms, 0));
    console.log('| moe_wgrad form | wall ms/step | CPU ms/step | moe_wgrad GPU ms/step (profile) |\n|---|---:|---:|---:|');
    for (const [i, [label]] of variants.entries()) console.log(`| ${label} | ${wall[i]!.toFixed(1)} | ${cpu[i]!.toFixed(1)} | ${wgradMs[i]!.toFixed(2)} |`);
  } finally {
    for (const m of models) m.destroy();
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'step') {
    const gpu = await Gpu.open();
    try {
      console.log(`# ${gpu.describe()}; quickstart MoE step, best of ${process.argv[3] ?? 3}, alternating; ${new Date().toISOString()}\n`);
      await step(gpu, Number(process.argv[3] ?? 3));
    } finally {
      gpu.destroy();
    }
    return;
  }
  const rounds = Number(process.argv[2] ?? 3);
  const filter = process.argv[3] ?? '';
  const names = (process.argv[4] ?? 'old,sg16x4').split(',');
  for (const n of names) if (!forms[n]) throw new Error(`unknown form '${n}' (${Object.keys(forms).join(', ')})`);
  const gpu = await Gpu.open();
  try {
    console.log(`# ${gpu.describe()}; wall ms per dispatch (GFLOP/s; CPU ms of this process per dispatch), best of ${rounds}, alternating; ${new Date().toISOString()}\n`);
    console.log(`| shape | k×n, slots | ${names.join(' | ')} | ${names.slice(1).map((n) => `${names[0]} / ${n}`).join(' | ')} |`);
    console.log(`|---|---|${names.map(() => '---:').join('|')}|${names.slice(1).map(() => '---:').join('|')}|`);
    for (const [label, g] of shapes) {
      if (filter && !label.includes(filter)) continue;
      const data = dataFor(g);
      const kernels = names.map((n) => forms[n]!(g));
      const want = await result(gpu, kernels[0]!, g, data);
      for (const [i, n] of names.entries()) {
        const err = maxRelError(await result(gpu, kernels[i]!, g, data), want);
        if (!(err <= 1e-5)) throw new Error(`${n} differs from ${names[0]} at ${label}: error ${err}`);
      }
      const exs = await Promise.all(kernels.map((k) => executor(gpu, k, g, data)));
      try {
        const wall = names.map(() => Infinity);
        const cpu = names.map(() => Infinity);
        for (let r = 0; r < rounds; r++) {
          for (const [i, ex] of exs.entries()) {
            const m = await measure(ex);
            wall[i] = Math.min(wall[i]!, m.wall);
            cpu[i] = Math.min(cpu[i]!, m.cpu);
          }
        }
        const cell = (i: number) => `${wall[i]!.toFixed(2)} (${(kernels[i]!.flops! / (wall[i]! * 1e6)).toFixed(1)}; cpu ${cpu[i]!.toFixed(2)})`;
        const ratios = names.slice(1).map((_, i) => `${(wall[0]! / wall[i + 1]!).toFixed(2)}× (cpu ${(cpu[0]! / cpu[i + 1]!).toFixed(2)}×)`);
        console.log(`| ${label} | ${g.k}×${g.n}, ${SLOTS} | ${names.map((_, i) => cell(i)).join(' | ')} | ${ratios.join(' | ')} |`);
      } finally {
        for (const ex of exs) ex.destroy();
      }
    }
  } finally {
    gpu.destroy();
  }
}

runBench(main);
