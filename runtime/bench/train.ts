// Training-step throughput of whole models: tokens/s, achieved GFLOP/s and where the step's GPU
// time goes, per kernel kind.
import type { Gpt2Spec } from '../../compiler/graph/gpt2.js';
import { compileGpt2, type CompiledTrial } from '../../compiler/lower/compile.js';
import { summarize } from '../../compiler/lower/summary.js';
import type { Gpu } from '../gpu/device.js';
import { GpuModel } from '../train/model.js';
import { loweringFor } from '../gpu/lowering.js';
import type { KindProfile } from './roofline.js';

export interface BenchModel {
  name: string;
  spec: Gpt2Spec;
}

export interface TrainBench {
  tokensPerSec: number;
  msPerStep: number;
  gflops: number;
  flopsPerStep: number;
  /** GPU time per kernel kind (sum over its dispatches), descending; undefined without timestamps. */
  profile?: KindProfile[];
  /** Plan's peak memory estimate, bytes. */
  peakBytes: number;
  /** Device memory the executor allocated for the plan (and its read-back staging), bytes. */
  allocatedBytes: number;
  lossFirst: number;
  lossLast: number;
}

const benchSpec = (s: Omit<Gpt2Spec, 'accumulate' | 'betas' | 'eps' | 'wd' | 'clip' | 'dropout' | 'name'>, name: string): BenchModel => ({
  name,
  spec: { ...s, name, dropout: 0, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0.1, clip: 1 },
});

/** Models every run measures; `full` adds a GPT-2-small-shaped one (too slow for a software adapter). */
export function benchModels(full: boolean): BenchModel[] {
  const out = [
    benchSpec({ layers: 2, width: 64, heads: 4, ffn: 256, vocab: 256, context: 64, batch: 16 }, 'quickstart-dense (L2 C64 T64 B16, bytes)'),
    benchSpec({ layers: 4, width: 256, heads: 4, ffn: 1024, vocab: 256, context: 128, batch: 8 }, 'small (L4 C256 T128 B8, bytes)'),
  ];
  // The quickstart model again with f16 matmul operands, where the adapter can (train.precision f16).
  out.push({ ...out[0]!, name: 'quickstart-dense f16 (matmul operands f16)', spec: { ...out[0]!.spec, name: 'quickstart-dense f16', precision: 'f16' } });
  if (full) out.push(benchSpec({ layers: 12, width: 768, heads: 12, ffn: 3072, vocab: 50257, context: 256, batch: 4 }, 'gpt2-small shape (L12 C768 T256 B4, V50257)'));
  return out;
}

function randomBatch(s: Gpt2Spec, seed: number) {
  const n = s.batch * s.context;
  let x = seed >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % s.vocab;
  return { tokens: Uint32Array.from({ length: n }, next), targets: Uint32Array.from({ length: n }, next) };
}

/** Trains `spec` on random tokens: warm-up steps, then timed steps until `minSeconds` have passed. */
export async function benchTraining(gpu: Gpu, spec: Gpt2Spec, minSeconds = 3, compile: (s: Gpt2Spec) => CompiledTrial = (s) => compileGpt2(s, undefined, loweringFor(gpu))): Promise<TrainBench> {
  const compiled: CompiledTrial = compile(spec);
  const summary = summarize(compiled);
  const m = await GpuModel.create(gpu, compiled, `bench ${spec.name}`);
  try {
    m.initParams(1);
    const batch = [randomBatch(spec, 1)];
    let step = 0;
    const run = (n: number) => {
      for (let i = 0; i < n; i++) m.trainStep(++step, 1e-4, 1, batch);
    };
    run(1);
    const lossFirst = await m.trainLoss();
    run(2);
    await m.ex.finish();
    // Calibrate: time one step, then run enough steps for minSeconds.
    let t0 = performance.now();
    run(1);
    await m.ex.finish();
    const one = Math.max(1e-3, (performance.now() - t0) / 1000);
    const n = Math.max(3, Math.ceil(minSeconds / one));
    t0 = performance.now();
    run(n);
    const lossLast = await m.trainLoss(); // the read waits for every step
    const secs = (performance.now() - t0) / 1000;
    const alloc = m.ex.allocatedBytes();
    const prof = await m.ex.profile('train_step', 2);
    let profile: TrainBench['profile'];
    if (prof) {
      const byKind = new Map<string, { ms: number; dispatches: number; flops: number; bytes: number }>();
      for (const p of prof) {
        const kind = p.kernel.replace(/_\d+$/, '');
        const e = byKind.get(kind) ?? { ms: 0, dispatches: 0, flops: 0, bytes: 0 };
        e.ms += p.ms;
        e.dispatches += p.dispatches;
        e.flops += p.flops ?? 0;
        e.bytes += p.bytes ?? 0;
        byKind.set(kind, e);
      }
      const total = [...byKind.values()].reduce((a, e) => a + e.ms, 0);
      profile = [...byKind].map(([kind, e]) => ({ kind, ...e, share: e.ms / total })).sort((a, b) => b.ms - a.ms);
    }
    return {
      tokensPerSec: (n * summary.tokensPerStep) / secs,
      msPerStep: (1000 * secs) / n,
      gflops: (n * summary.flopsPerStep) / secs / 1e9,
      flopsPerStep: summary.flopsPerStep,
      ...(profile ? { profile } : {}),
      peakBytes: summary.peakBytes,
      allocatedBytes: alloc.plan + alloc.staging,
      lossFirst,
      lossLast,
    };
  } finally {
    m.destroy();
  }
}
