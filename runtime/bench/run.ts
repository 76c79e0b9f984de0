// `npm run bench`: every figure in one run on one adapter, so ratios compare like with like.
import { patchBench } from './patch.js';
import { runBench } from './entry.js';
import { parseArgs } from 'node:util';
import { UserError } from '../../grammar/user-error.js';
import { defaultTiling, subgroupTiling, type MatmulShape, type MatmulTiling } from '../../compiler/kernels/matmul.js';
import { Gpu } from '../gpu/device.js';
import { measureMatmul } from './matmul.js';
import { benchExpand } from './expand.js';
import { benchQueue } from './queue.js';
import { isSkipped, torchBench } from './torch.js';
import { benchModels, benchTraining } from './train.js';
import { moeBench } from './moe.js';
import { moeChoiceBench } from './moe-choice.js';
import { compileBench, compileConcurrencyBench } from './compile.js';
import { measureRates, rooflineTable, speedBound, type Rates } from './roofline.js';
import { loweringFor } from '../gpu/lowering.js';
import { compileGpt2 } from '../../compiler/lower/compile.js';
import { trackSection } from './track-section.js';

// The plain register-blocked vec4 kernel (4×4 outputs per invocation) DESIGN.md quotes at ~5
// GFLOP/s on lavapipe; measured here beside the default so the gain is a same-run ratio.
const plainTiling: MatmulTiling = { tm: 4, tn: 4, wgX: 8, wgY: 8 };

interface Row {
  name: string;
  shape: MatmulShape;
}

function matmulRows(quick: boolean): Row[] {
  const square = (quick ? [256, 512] : [256, 512, 1024]).map((n) => ({ name: `square ${n}³`, shape: { m: n, n, k: n } }));
  // Transformer shapes: T tokens (batch × context) against a layer's weights, forward and backward.
  const T = 1024;
  const d = 768;
  return [
    ...square,
    { name: `qkv      ${T}×${3 * d}×${d} (A·Bᵀ)`, shape: { m: T, n: 3 * d, k: d, transB: true, bias: true } },
    { name: `fc+gelu  ${T}×${4 * d}×${d} (A·Bᵀ)`, shape: { m: T, n: 4 * d, k: d, transB: true, bias: true, activation: 'gelu' } },
    { name: `dX       ${T}×${d}×${4 * d} (A·B)`, shape: { m: T, n: d, k: 4 * d } },
    { name: `dW       ${4 * d}×${d}×${T} (Aᵀ·B, +=)`, shape: { m: 4 * d, n: d, k: T, transA: true, accumulate: true } },
    { name: `small    ${512}×${128}×${512} (A·Bᵀ)`, shape: { m: 512, n: 128, k: 512, transB: true } },
  ];
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

/** Training throughput of whole models, moec against the same model in PyTorch, in this run. */
async function trainSection(gpu: Gpu, full: boolean, rates: Rates): Promise<void> {
  console.log('\n## training step (random tokens; dense GPT-2; AdamW, clip 1, f32 unless named)\n');
  console.log('| model | moec tokens/s | moec ms/step | moec GFLOP/s | PyTorch tokens/s | PyTorch ms/step | moec / PyTorch | peak memory (plan) | allocated (executor) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const profiles: string[] = [];
  const tables: string[] = [];
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  for (const { name, spec } of benchModels(full)) {
    if (spec.precision === 'f16' && !gpu.features.has('shader-f16')) {
      profiles.push(`${name}: skipped, the adapter has no shader-f16`);
      continue;
    }
    const r = await benchTraining(gpu, spec);
    const t = await torchBench({
      model: { layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, vocab: spec.vocab, context: spec.context, dropout: 0, moe: null },
      batch: spec.batch, steps: Math.max(3, Math.ceil(3000 / Math.max(1, r.msPerStep))), warmup: 2, lr: 1e-4, wd: spec.wd, betas: spec.betas, eps: spec.eps, clip: spec.clip, seed: 1,
    });
    const torchCols = isSkipped(t) ? `— | — | — ` : `${t.tokens_per_s.toFixed(0)} | ${t.ms_per_step.toFixed(1)} | ${(r.tokensPerSec / t.tokens_per_s).toFixed(2)}×`;
    // PyTorch runs the f32 model for the f16 row too (its CPU path has no f16 matmul to speak of).
    console.log(`| ${name} | ${r.tokensPerSec.toFixed(0)} | ${r.msPerStep.toFixed(1)} | ${r.gflops.toFixed(2)} | ${torchCols} | ${mib(r.peakBytes)} | ${mib(r.allocatedBytes)} |`);
    if (isSkipped(t)) profiles.push(`PyTorch skipped for ${name}: ${t.skipped}`);
    else profiles.push(`PyTorch for ${name}: torch ${t.torch}, ${t.threads} threads, BLAS: ${t.blas}`, `${name}: ${speedBound(r.flopsPerStep, r.msPerStep, t.ms_per_step, rates)}`);
    if (r.profile) profiles.push(`where ${name}'s step goes (GPU time per kernel kind): ${r.profile.slice(0, 8).map((p) => `${p.kind} ${pct(p.share)}`).join(', ')}`);
    if (r.profile && !tables.length) tables.push(`\n### ${name}: each kernel kind against the adapter's best rates\n`, ...rooflineTable(r.profile, rates));
  }
  console.log(`\n${profiles.map((p) => `- ${p}`).join('\n')}`);
  console.log(tables.join('\n'));
}

/**
 * GPT-2's vocabulary on this adapter with the LM head chunked over tokens, at GPT-2 small's width
 * 768 (wte in vocabulary parts and the parameters in regions under the binding limit), 2 of its 12
 * layers and 256 tokens per step (1 × 256), so a software adapter finishes in minutes.
 */
async function gpt2Section(gpu: Gpu): Promise<void> {
  // GPT-2 small's width: wte (147 MiB) is cut into vocabulary parts under the adapter's binding limit.
  const spec = { name: 'gpt2 vocab L2 C768', layers: 2, width: 768, heads: 12, ffn: 3072, vocab: 50257, context: 256, batch: 1, dropout: 0, accumulate: 1, betas: [0.9, 0.95] as [number, number], eps: 1e-8, wd: 0.1, clip: 1 };
  const compiled = compileGpt2(spec, undefined, loweringFor(gpu), { maxRegionBytes: Math.min(gpu.device.limits.maxStorageBufferBindingSize, gpu.device.limits.maxBufferSize) });
  console.log(`\n## GPT-2's vocabulary, head chunked (2 layers, C768 H12 T256 B1, V50257)\n`);
  console.log(`- ${compiled.graph.notes.join('; ') || 'LM head unchunked'}`);
  const r = await benchTraining(gpu, spec, 3, () => compiled);
  console.log(`- ${r.msPerStep.toFixed(0)} ms per step, ${r.tokensPerSec.toFixed(1)} tokens/s, ${r.gflops.toFixed(2)} GFLOP/s (${(r.flopsPerStep / 1e9).toFixed(1)} GFLOP per step), peak memory ${(r.peakBytes / 2 ** 20).toFixed(1)} MiB; loss ${r.lossFirst.toFixed(3)} -> ${r.lossLast.toFixed(3)}`);
  if (r.profile) console.log(`- where the step goes: ${r.profile.slice(0, 8).map((p) => `${p.kind} ${pct(p.share)}`).join(', ')}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, full: { type: 'boolean' }, adapter: { type: 'string' }, only: { type: 'string' }, baseline: { type: 'string' }, rounds: { type: 'string' } } });
  const want = (section: string) => values.only === undefined || values.only.split(',').includes(section);
  const gpu = await Gpu.open(values.adapter ? { adapter: values.adapter } : {});
  try {
    console.log(`# moec bench on ${gpu.describe()}  (${new Date().toISOString()})`);
    if (want('train') || want('moe')) {
      const rates = await measureRates(gpu, loweringFor(gpu));
      console.log(`\n## the adapter's best measured rates (what the kernels below are compared with)\n`);
      console.log(`- matmul: ${rates.matmulGflops.toFixed(2)} GFLOP/s (square ${rates.matmulShape}, the tiling moec lowers to on this adapter)`);
      console.log(`- copy: ${rates.copyGBs.toFixed(2)} GB/s read + written (${rates.copyHow}, 64 MiB)`);
      if (want('train')) await trainSection(gpu, !!values.full, rates);
      if (want('moe')) await moeBench(gpu, rates);
    }
    if (want('queue')) {
      console.log('\n## the trial queue (BullMQ on a local redis-server; 4 trials of 32 steps, moec CLI processes)\n');
      const q = await benchQueue((line) => console.error(`queue bench: ${line}`));
      if ('skipped' in q) console.log(`skipped: ${q.skipped}`);
      else {
        console.log(`- enqueue -> a worker takes the trial: ${q.enqueueToActiveMs.toFixed(0)} ms; taken -> first step on the queue (fork, adapter, compile, data): ${q.activeToFirstStepMs.toFixed(0)} ms (mean of ${q.trials} trials, 1 worker)`);
        console.log(`- one progress event: ${q.progressWriteMs.toFixed(2)} ms to write (job.updateProgress), ${q.progressDeliveryMs.toFixed(2)} ms until QueueEvents hears it (mean of 200)`);
        console.log(`- sweep wall time: ${q.wall.map((w) => `${w.workers} worker${w.workers > 1 ? 's' : ''} ${w.seconds.toFixed(1)} s`).join(', ')}; the same sweep in one local moec run: ${q.localSeconds.toFixed(1)} s`);
      }
    }
    if (want('moe-choice')) await moeChoiceBench(gpu);
    if (want('patch')) await patchBench(gpu);
    // Minutes of cold compiles in fresh processes on a software adapter: only when named.
    const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
    if (rounds !== undefined && !(Number.isInteger(rounds) && rounds >= 1)) throw new UserError(`--rounds must be a whole number of at least 1, not '${values.rounds}'`, { where: '--rounds' });
    if (values.only?.split(',').includes('compile')) compileBench({ rounds, baseline: values.baseline });
    if (values.only?.split(',').includes('compile-concurrency')) compileConcurrencyBench({ rounds });
    if (want('gpt2')) await gpt2Section(gpu);
    if (want('torch-track')) await trackSection(gpu);
    if (!want('matmul')) return;
    console.log(`\n## matmul (GFLOP/s; default tiling ${defaultTiling.tm}×${defaultTiling.tn} per invocation, plain = vec4 4×4)\n`);
    // The subgroup tiling (16×4 per invocation, A shared by subgroupBroadcast) where the adapter suits it.
    const sg = !!loweringFor(gpu).subgroupMatmul;
    console.log(`| shape | default GFLOP/s | ms/call | plain GFLOP/s | default / plain |${sg ? ' subgroup GFLOP/s | subgroup / default |' : ''}`);
    console.log(`|---|---:|---:|---:|---:|${sg ? '---:|---:|' : ''}`);
    for (const row of matmulRows(!!values.quick)) {
      const fast = await measureMatmul(gpu, row.shape, defaultTiling);
      const plain = await measureMatmul(gpu, row.shape, plainTiling);
      const sub = sg ? await measureMatmul(gpu, row.shape, subgroupTiling) : undefined;
      const sgCols = sub ? ` ${sub.gflops.toFixed(2)} | ${(sub.gflops / fast.gflops).toFixed(2)}× |` : '';
      console.log(`| ${row.name} | ${fast.gflops.toFixed(2)} | ${fast.msPerCall.toFixed(2)} | ${plain.gflops.toFixed(2)} | ${(fast.gflops / plain.gflops).toFixed(2)}× |${sgCols}`);
    }
    {
      const r = await benchExpand();
      console.log(`\n## sweep expansion\n\n${r.trials} trials expanded in ${r.ms.toFixed(1)} ms`);
    }
  } finally {
    gpu.destroy();
  }
}

runBench(main);
