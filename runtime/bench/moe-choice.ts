// Expert choice against token choice at equal active parameters, in one run: the quickstart's top-2
// MoE model with token choice (dropless, balance 0.01) and with expert choice at capacity 1 (each
// expert takes 2·N/E tokens, so a token averages top = 2 experts), chosen over the micro-batch and
// within each sequence. Same parameters, same expert FLOPs on average; the difference is routing.
import type { TrialConfig } from '../../compiler/frontend/index.js';
import { compileTrial, gpt2SpecOf } from '../../compiler/lower/compile.js';
import { loweringFor } from '../gpu/lowering.js';
import type { Gpu } from '../gpu/device.js';
import { quickstartMoe } from './moe.js';
import { benchTraining } from './train.js';

export async function moeChoiceBench(gpu: Gpu): Promise<void> {
  const token = quickstartMoe();
  const m = token.model.moe!;
  const expert = (group: 'batch' | 'sequence'): TrialConfig => ({
    ...token, model: { ...token.model, moe: { ...m, choice: 'expert', choiceGroup: group, capacity: 1, dropless: false, balance: 0 } },
  });
  const rows: [string, TrialConfig][] = [
    [`token choice, top ${m.top}, dropless, balance ${m.balance}`, token],
    ['expert choice over the micro-batch, capacity 1', expert('batch')],
    ['expert choice within each sequence, capacity 1', expert('sequence')],
  ];
  const M = token.model;
  console.log(`\n## Expert choice vs token choice (quickstart MoE: L${M.layers} C${M.width} T${M.context} B${token.train.batch}, ${m.experts} experts, top ${m.top}; AdamW, clip 1)\n`);
  console.log('| routing | tokens/s | ms/step | vs token choice |');
  console.log('|---|---:|---:|---:|');
  let base = 0;
  const notes: string[] = [];
  for (const [name, cfg] of rows) {
    const r = await benchTraining(gpu, gpt2SpecOf(cfg, name), 3, () => compileTrial(cfg, name, loweringFor(gpu)));
    base ||= r.msPerStep;
    console.log(`| ${name} | ${r.tokensPerSec.toFixed(0)} | ${r.msPerStep.toFixed(1)} | ${(r.msPerStep / base).toFixed(2)}× |`);
    if (r.profile) notes.push(`where the ${name} step goes: ${r.profile.slice(0, 6).map((p) => `${p.kind} ${(100 * p.share).toFixed(0)}%`).join(', ')}`);
  }
  console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
}
