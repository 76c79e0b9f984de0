// The modern routing designs against token choice at equal active parameters, in one run (the arms
// of pipelines/modern-routing.moe on the quickstart's top-2 MoE model): token choice (dropless,
// balance 0.01); token choice with the auxiliary-loss-free bias (bias-rate 0.001, balance 0);
// expert choice at capacity 1 (each expert takes 2·N/E tokens, so a token averages top = 2
// experts), over the micro-batch and within each sequence; fine-grained experts with a shared one
// (the E experts split in 4, top 4·2 − 1 routed + 1 shared, all of width ffn/4: the same 2 × ffn
// hidden units per token). Same expert FLOPs per token on average; the difference is routing.
import { countParams, type TrialConfig } from '../../compiler/frontend/index.js';
import { compileTrial, gpt2SpecOf } from '../../compiler/lower/compile.js';
import { loweringFor } from '../gpu/lowering.js';
import type { Gpu } from '../gpu/device.js';
import { quickstartMoe } from './moe.js';
import { benchTraining, type TrainBench } from './train.js';

export async function moeChoiceBench(gpu: Gpu): Promise<void> {
  const token = quickstartMoe();
  const m = token.model.moe!;
  const expert = (group: 'batch' | 'sequence'): TrialConfig => ({
    ...token, model: { ...token.model, moe: { ...m, choice: 'expert', choiceGroup: group, capacity: 1, dropless: false, balance: 0 } },
  });
  const M = token.model;
  const quarter = M.ffn / 4;
  const fine: TrialConfig = {
    ...token, model: { ...M, moe: { ...m, experts: 4 * m.experts, top: 4 * m.top - 1, expertWidth: quarter, shared: 1, sharedWidth: quarter } },
  };
  const rows: [string, TrialConfig][] = [
    [`token choice, top ${m.top}, dropless, balance ${m.balance}`, token],
    ['token choice, auxiliary-loss-free bias 0.001, balance 0', { ...token, model: { ...M, moe: { ...m, balance: 0, biasRate: 0.001 } } }],
    ['expert choice over the micro-batch, capacity 1', expert('batch')],
    ['expert choice within each sequence, capacity 1', expert('sequence')],
    [`fine-grained ${4 * m.experts} × ffn/4, top ${4 * m.top - 1} + 1 shared ffn/4`, fine],
  ];
  console.log(`\n## Modern routing vs token choice at equal active parameters (quickstart MoE: L${M.layers} C${M.width} T${M.context} B${token.train.batch}, ${m.experts} experts, top ${m.top}; AdamW, clip 1)\n`);
  console.log('| routing | active / total params | tokens/s | ms/step | vs token choice |');
  console.log('|---|---:|---:|---:|---:|');
  // Two rounds, the arms alternating (forward, then backward order), each arm's faster round kept:
  // on a shared machine a load spike then lands on one round of one arm, not on one arm alone.
  const best: (TrainBench | undefined)[] = rows.map(() => undefined);
  for (const order of [rows.map((_, i) => i), rows.map((_, i) => rows.length - 1 - i)]) {
    for (const i of order) {
      const [name, cfg] = rows[i]!;
      const r = await benchTraining(gpu, gpt2SpecOf(cfg, name), 3, () => compileTrial(cfg, name, loweringFor(gpu)));
      if (!best[i] || r.msPerStep < best[i]!.msPerStep) best[i] = r;
    }
  }
  const base = best[0]!.msPerStep;
  const notes: string[] = [];
  rows.forEach(([name, cfg], i) => {
    const r = best[i]!;
    const n = countParams(cfg.model, undefined, cfg.train.batch);
    console.log(`| ${name} | ${(n.active / 1e3).toFixed(1)}k / ${(n.total / 1e3).toFixed(1)}k | ${r.tokensPerSec.toFixed(0)} | ${r.msPerStep.toFixed(1)} | ${(r.msPerStep / base).toFixed(2)}× |`);
    if (r.profile) notes.push(`where the ${name} step goes: ${r.profile.slice(0, 6).map((p) => `${p.kind} ${(100 * p.share).toFixed(0)}%`).join(', ')}`);
  });
  console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
}
