// The MoE layer's cost: the quickstart MoE model against dense models with K× and N× the FFN
// (the goal is close to K×, far from N×), and against the same MoE model in PyTorch, in one run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline, type TrialConfig } from '../../compiler/frontend/index.js';
import { compileTrial, gpt2SpecOf } from '../../compiler/lower/compile.js';
import { loweringFor } from '../gpu/lowering.js';
import type { Gpu } from '../gpu/device.js';
import { isSkipped, torchBench, torchConfig } from './torch.js';
import { benchTraining } from './train.js';
import { rooflineTable, speedBound, type Rates } from './roofline.js';

const quickstart = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../pipelines/quickstart.moe');

/** The quickstart's top-2 MoE trial at the benchmark's batch (16 × 64 tokens, no dropout). */
export function quickstartMoe(): TrialConfig {
  const r = loadPipeline(quickstart);
  const t = r.trials.find((x) => x.config.model.moe?.top === 2);
  if (!t) throw new Error(`${quickstart} has no top=2 trial`);
  const c = structuredClone(t.config);
  c.train.batch = 16;
  c.train.clip = 1;
  c.model.dropout = 0;
  return c;
}

export async function moeBench(gpu: Gpu, rates?: Rates): Promise<void> {
  const moe = quickstartMoe();
  const m = moe.model.moe!;
  const dense = (mult: number): TrialConfig => ({ ...moe, model: { ...moe.model, moe: null, ffn: moe.model.ffn * mult } });
  const rows: [string, TrialConfig][] = [
    [`MoE ${m.experts} experts, top ${m.top}, ffn ${moe.model.ffn}`, moe],
    [`dense ffn ${moe.model.ffn * m.top} (K× the FFN)`, dense(m.top)],
    [`dense ffn ${moe.model.ffn * m.experts} (N× the FFN)`, dense(m.experts)],
  ];
  console.log(`\n## MoE step (quickstart model: L${moe.model.layers} C${moe.model.width} T${moe.model.context} B${moe.train.batch}, bytes; AdamW, clip 1)\n`);
  console.log('| model | moec tokens/s | moec ms/step | PyTorch tokens/s | PyTorch ms/step | moec / PyTorch |');
  console.log('|---|---:|---:|---:|---:|---:|');
  const ms: number[] = [];
  const notes: string[] = [];
  const tables: string[] = [];
  for (const [name, cfg] of rows) {
    const r = await benchTraining(gpu, gpt2SpecOf(cfg, name), 3, () => compileTrial(cfg, name, loweringFor(gpu)));
    ms.push(r.msPerStep);
    const t = await torchBench(torchConfig(cfg.model, cfg.train, { steps: Math.max(3, Math.ceil(3000 / Math.max(1, r.msPerStep))), warmup: 2 }));
    const torchCols = isSkipped(t) ? '— | — | —' : `${t.tokens_per_s.toFixed(0)} | ${t.ms_per_step.toFixed(1)} | ${(r.tokensPerSec / t.tokens_per_s).toFixed(2)}×`;
    if (isSkipped(t)) notes.push(`PyTorch skipped: ${t.skipped}`);
    console.log(`| ${name} | ${r.tokensPerSec.toFixed(0)} | ${r.msPerStep.toFixed(1)} | ${torchCols} |`);
    if (r.profile) notes.push(`where the ${name} step goes: ${r.profile.slice(0, 8).map((p) => `${p.kind} ${(100 * p.share).toFixed(0)}%`).join(', ')}`);
    if (r.profile && rates && cfg === moe) tables.push(`\n### ${name}: each kernel kind against the adapter's best rates\n`, ...rooflineTable(r.profile, rates));
    if (rates && cfg === moe && !isSkipped(t)) notes.push(speedBound(r.flopsPerStep, r.msPerStep, t.ms_per_step, rates));
  }
  console.log(`\nMoE step time / dense K×: ${(ms[0]! / ms[1]!).toFixed(2)}; / dense N×: ${(ms[0]! / ms[2]!).toFixed(2)}`);
  console.log(`\n${[...new Set(notes)].map((n) => `- ${n}`).join('\n')}`);
  console.log(tables.join('\n'));
}
