// Same-process comparison of the attention kernels (plain and subgroup forms) at the shapes the
// bench models train with: forward, dq and dk/dv. Forms alternate per kernel and each keeps its
// best of `rounds` timings, so machine noise hits both alike; the subgroup results are checked
// against the plain ones first. Each cell gives wall ms per call and, in brackets, CPU ms per call.
//   node .build-attn/runtime/bench/attention-compare.js [rounds=3] [shape filter] [form,form,...]
// With `step` first, whole training steps instead (quickstart MoE and dense; 'small' too if named),
// lowered for this adapter with the plain and then the subgroup attention kernels, alternating:
//   node .build-attn/runtime/bench/attention-compare.js step [rounds=3] [model filter]
import { runBench } from './entry.js';
import { attentionBackwardKernels, attentionForwardKernel, type AttentionShape } from '../../compiler/kernels/attention.js';
import { attentionBackwardSubgroupKernels, attentionForwardSubgroupKernel } from '../../compiler/kernels/attention-subgroup.js';
import type { RowKernel } from '../../compiler/kernels/layernorm.js';
import { attentionPlan } from './attention-plan.js';
import { maxRelError, randomArray } from '../../compiler/reference/random.js';
import { compileGpt2, compileTrial, gpt2SpecOf, type CompiledTrial } from '../../compiler/lower/compile.js';
import type { LoweringTarget } from '../../compiler/lower/kernels.js';
import type { Gpt2Spec } from '../../compiler/graph/gpt2.js';
import { Gpu } from '../gpu/device.js';
import { loweringFor } from '../gpu/lowering.js';
import { PlanExecutor } from '../executor/executor.js';
import { quickstartMoe } from './moe.js';
import { benchModels } from './train.js';
import { GpuModel } from '../train/model.js';

const shapes: Array<[string, AttentionShape]> = [
  ['quickstart MoE (B16 T64 heads 2 hd 32)', { B: 16, T: 64, heads: 2, headDim: 32 }],
  ['quickstart dense (B16 T64 heads 4 hd 16)', { B: 16, T: 64, heads: 4, headDim: 16 }],
  ['small (B8 T128 heads 4 hd 64)', { B: 8, T: 128, heads: 4, headDim: 64 }],
];

type Form = (s: AttentionShape) => [RowKernel, RowKernel, RowKernel];
const forms: Record<string, Form> = {
  old: (s) => [attentionForwardKernel('attn_fwd', s), ...attentionBackwardKernels('attn_bwd', s)],
  subgroup: (s) => [attentionForwardSubgroupKernel('attn_fwd', s), ...attentionBackwardSubgroupKernels('attn_bwd', s)],
  sg1: (s) => [attentionForwardSubgroupKernel('attn_fwd', s, 1), ...attentionBackwardSubgroupKernels('attn_bwd', s, 1)],
  sg2: (s) => [attentionForwardSubgroupKernel('attn_fwd', s, 2), ...attentionBackwardSubgroupKernels('attn_bwd', s, 2)],
  sg4: (s) => [attentionForwardSubgroupKernel('attn_fwd', s, 4), ...attentionBackwardSubgroupKernels('attn_bwd', s, 4)],
};
const kernels = ['fwd', 'dq', 'dkv'] as const;


/** The target for this adapter, with the plain attention kernels or the subgroup ones where subgroups are allowed. */
function attentionTarget(gpu: Gpu, subgroup: boolean): LoweringTarget {
  const plain: LoweringTarget['kernels'] = {
    attn_fwd: { subgroup: (n: string, s: AttentionShape) => attentionForwardKernel(n, s) },
    attn_bwd_dq: { subgroup: (n: string, s: AttentionShape) => attentionBackwardKernels(n, s)[0] },
    attn_bwd_dkv: { subgroup: (n: string, s: AttentionShape) => attentionBackwardKernels(n, s)[1] },
  };
  return { ...loweringFor(gpu), ...(subgroup ? {} : { kernels: plain }) };
}

function randomBatch(s: Gpt2Spec) {
  const n = s.batch * s.context;
  let x = 1;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % s.vocab;
  return [{ tokens: Uint32Array.from({ length: n }, next), targets: Uint32Array.from({ length: n }, next) }];
}

/**
 * Whole training steps: both plans (plain and subgroup attention, the rest lowered alike) stay
 * loaded and take turns at bursts of `burst` steps, `rounds` times; each keeps its best burst (wall
 * and CPU time per step). Short alternating bursts, because on a shared machine a step's time
 * swings 2× as other work comes and goes.
 */
async function steps(gpu: Gpu, rounds: number, filter: string): Promise<void> {
  const moe = quickstartMoe();
  const dense = benchModels(false);
  const models: Array<[string, Gpt2Spec, (s: Gpt2Spec, t: LoweringTarget) => CompiledTrial]> = [
    ['quickstart MoE (L2 C64 heads 2 T64 B16)', gpt2SpecOf(moe, 'moe'), (_s, t) => compileTrial(moe, 'moe', t)],
    ['quickstart dense (L2 C64 heads 4 T64 B16)', dense[0]!.spec, (s, t) => compileGpt2(s, undefined, t)],
    ['small (L4 C256 heads 4 T128 B8)', dense[1]!.spec, (s, t) => compileGpt2(s, undefined, t)],
  ];
  console.log(`# ${gpu.describe()}; training step ms (CPU ms), best burst of ${rounds}, alternating; ${new Date().toISOString()}\n`);
  console.log('| model | plain attention ms/step | subgroup attention ms/step | speed-up wall (CPU) | attention share of GPU time (plain → subgroup) |');
  console.log('|---|---:|---:|---:|---|');
  for (const [label, spec, compile] of models) {
    if (filter ? !label.includes(filter) : label.startsWith('small')) continue;
    const ms: GpuModel[] = [];
    try {
      for (const f of [0, 1]) {
        const m = await GpuModel.create(gpu, compile(spec, attentionTarget(gpu, f === 1)), `attention ${f ? 'subgroup' : 'plain'}`);
        ms.push(m);
        m.initParams(1);
      }
      const batch = randomBatch(spec);
      let step = 0;
      const burstOf = async (m: GpuModel, n: number) => {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        for (let i = 0; i < n; i++) m.trainStep(++step, 1e-4, 1, batch);
        await m.trainLoss();
        const c = process.cpuUsage(c0);
        return { wall: (performance.now() - t0) / n, cpu: (c.user + c.system) / 1000 / n };
      };
      for (const m of ms) await burstOf(m, 2); // warm-up
      const burst = Math.max(2, Math.round(400 / (await burstOf(ms[0]!, 1)).wall));
      const best = ms.map(() => ({ wall: Infinity, cpu: Infinity }));
      for (let r = 0; r < rounds; r++) {
        for (const [f, m] of ms.entries()) {
          const t = await burstOf(m, burst);
          best[f] = { wall: Math.min(best[f]!.wall, t.wall), cpu: Math.min(best[f]!.cpu, t.cpu) };
        }
      }
      const share: string[] = [];
      for (const m of ms) {
        const prof = (await m.ex.profile('train_step', 2)) ?? [];
        const total = prof.reduce((a, p) => a + p.ms, 0);
        const attn = new Map<string, number>();
        for (const p of prof.filter((x) => x.kernel.startsWith('attn'))) {
          const kind = p.kernel.replace(/_\d+(_dq|_dkv)?$/, '');
          attn.set(kind, (attn.get(kind) ?? 0) + p.ms);
        }
        const sum = [...attn.values()].reduce((a, v) => a + v, 0);
        share.push(`${((100 * sum) / total).toFixed(0)}% (${[...attn].map(([k, v]) => `${k} ${(v / spec.layers).toFixed(2)}`).join(', ')} ms/layer)`);
      }
      const [p, q] = best as [{ wall: number; cpu: number }, { wall: number; cpu: number }];
      console.log(`| ${label} | ${p.wall.toFixed(1)} (${p.cpu.toFixed(1)}) | ${q.wall.toFixed(1)} (${q.cpu.toFixed(1)}) | ${(p.wall / q.wall).toFixed(2)}× (${(p.cpu / q.cpu).toFixed(2)}×) | ${share[0]} → ${share[1]} |`);
    } finally {
      for (const m of ms) m.destroy();
    }
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'step') {
    const gpu = await Gpu.open();
    try {
      await steps(gpu, Number(process.argv[3] ?? 3), process.argv[4] ?? '');
    } finally {
      gpu.destroy();
    }
    return;
  }
  const rounds = Number(process.argv[2] ?? 3);
  const filter = process.argv[3] ?? '';
  const names = (process.argv[4] ?? 'old,subgroup').split(',');
  for (const n of names) if (!forms[n]) throw new Error(`unknown form '${n}' (${Object.keys(forms).join(', ')})`);
  const gpu = await Gpu.open();
  try {
    console.log(`# ${gpu.describe()}; ms per call and GFLOP/s, best of ${rounds}, alternating; ${new Date().toISOString()}\n`);
    console.log(`| shape | kernel | ${names.map((n) => `${n} ms (CPU ms)`).join(' | ')} | ${names.map((n) => `${n} GFLOP/s`).join(' | ')} | ${names.slice(1).map((n) => `${n} / ${names[0]} wall (CPU)`).join(' | ')} |`);
    console.log(`|---|---|${names.map(() => '---:|---:').join('|')}|${names.slice(1).map(() => '---:').join('|')}|`);
    for (const [label, s] of shapes) {
      if (filter && !label.includes(filter)) continue;
      const C = s.heads * s.headDim;
      const qkv = randomArray(s.B * s.T * 3 * C, 1, 3);
      const dout = randomArray(s.B * s.T * C, 2);
      const ex: Record<string, PlanExecutor> = {};
      const results: Record<string, Float32Array[]> = {};
      for (const n of names) {
        const t0 = performance.now();
        ex[n] = await PlanExecutor.create(gpu, attentionPlan(s, forms[n]!(s)));
        const e = ex[n]!;
        e.write('qkv', qkv);
        e.write('dout', dout);
        for (const k of kernels) e.run(k);
        results[n] = [await e.read('out'), await e.read('lse'), await e.read('delta'), await e.read('dqkv')];
        console.error(`${label}: ${n} compiled and ran once in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
      for (const n of names.slice(1)) {
        const err = Math.max(...results[n]!.map((r, i) => maxRelError(r, results[names[0]!]![i]!)));
        if (!(err <= 1e-4)) throw new Error(`${n} differs from ${names[0]} at ${label}: error ${err}`);
      }
      for (const [ki, k] of kernels.entries()) {
        // Wall and CPU time (lavapipe's threads run in this process): on a machine shared with
        // other work the CPU time per call is the steadier of the two.
        const best: Record<string, { wall: number; cpu: number }> = {};
        const reps: Record<string, number> = {};
        const time = async (n: string, r: number) => {
          const t0 = performance.now();
          const c0 = process.cpuUsage();
          ex[n]!.run(k, r);
          await ex[n]!.finish();
          const c = process.cpuUsage(c0);
          return { wall: (performance.now() - t0) / r, cpu: (c.user + c.system) / 1000 / r };
        };
        for (const n of names) {
          reps[n] = Math.max(1, Math.round(80 / Math.max((await time(n, 1)).wall, 0.01)));
          best[n] = { wall: Infinity, cpu: Infinity };
        }
        for (let r = 0; r < rounds; r++) {
          for (const n of names) {
            const t = await time(n, reps[n]!);
            best[n] = { wall: Math.min(best[n]!.wall, t.wall), cpu: Math.min(best[n]!.cpu, t.cpu) };
          }
        }
        const flops = ex[names[0]!]!.plan.kernels[ki]!.flops!;
        const gf = (n: string) => (flops / (best[n]!.wall * 1e6)).toFixed(2);
        const ratio = (n: string, m: 'wall' | 'cpu') => `${(best[names[0]!]![m] / best[n]![m]).toFixed(2)}×`;
        console.log(`| ${label} | ${k} | ${names.map((n) => `${best[n]!.wall.toFixed(2)} (${best[n]!.cpu.toFixed(2)})`).join(' | ')} | ${names.map(gf).join(' | ')} | ${names.slice(1).map((n) => `${ratio(n, 'wall')} (${ratio(n, 'cpu')})`).join(' | ')} |`);
      }
      for (const e of Object.values(ex)) e.destroy();
    }
  } finally {
    gpu.destroy();
  }
}

runBench(main);
