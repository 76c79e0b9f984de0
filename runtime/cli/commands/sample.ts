import { parseArgs } from 'node:util';
import { UserError } from '../../../grammar/user-error.js';
import { openTrained } from '../../eval/trained.js';
import { expertView } from '../../sample/expert-view.js';
import { sample } from '../../sample/sample.js';
import { adapterOption, openGpu } from '../adapter-flag.js';
import type { Command } from '../command.js';

function number(values: Record<string, unknown>, flag: string, dflt: number, ok: (n: number) => boolean, what: string): number {
  const v = values[flag];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) throw new UserError(`--${flag} '${String(v)}' is not ${what}`, { where: `--${flag}` });
  return n;
}

export const sampleCommand: Command = {
  name: 'sample',
  summary: 'generate text from a trained trial on the GPU, optionally showing the experts each token went to',
  usage: `usage: moec sample TRIAL|CHECKPOINT --prompt TEXT [--tokens N] [--temperature T] [--top-k K] [--seed S] [--experts] [--label ID] [--json] [--runs DIR] [--adapter NAME]

Continues TEXT with the trial's own tokenizer from its latest checkpoint (or CHECKPOINT). The same
seed gives the same text on the same adapter.
  --tokens N        tokens to generate (default 64)
  --temperature T   softmax temperature; 0 = greedy (default 1)
  --top-k K         sample among the K likeliest tokens only; 0 = all (default 0)
  --seed S          the sampling seed (default 1)
  --experts         per generated token and MoE layer, the experts it went to (coloured on a terminal)
  --label ID        for a label-routed model: the label value to route by
  --json            the text, each token with its experts, and the cost per token, as JSON
Cost: no KV cache. Every token runs the whole forward pass over the last 'context' tokens
(batch 1), so each token costs one forward of the full window, whatever the prompt's length; the
time per token is printed. Sequence routing pools the whole window (the end-of-text padding past
the text included) unless the model uses 'unit sequence(prefix P)'. MoE capacity applies to the
window's tokens. See docs/AFTER-TRAINING.md.`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        prompt: { type: 'string' }, tokens: { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' }, seed: { type: 'string' },
        experts: { type: 'boolean' }, label: { type: 'string' }, json: { type: 'boolean' }, runs: { type: 'string' }, ...adapterOption,
      },
    });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    if (values.prompt === undefined) throw new UserError('--prompt TEXT is required', { where: '--prompt', hint: "e.g. --prompt 'The '" });
    const int = (n: number) => Number.isInteger(n);
    const o = {
      prompt: values.prompt,
      tokens: number(values, 'tokens', 64, (n) => int(n) && n >= 1 && n <= 100_000, 'a whole number from 1 to 100000'),
      temperature: number(values, 'temperature', 1, (n) => n >= 0 && n <= 100, 'a number from 0 to 100'),
      topK: number(values, 'top-k', 0, (n) => int(n) && n >= 0, 'a whole number (0 = all tokens)'),
      seed: number(values, 'seed', 1, (n) => int(n) && n >= 0 && n < 2 ** 32, 'a whole number from 0 to 4294967295'),
      experts: Boolean(values.experts),
      ...(values.label !== undefined ? { label: number(values, 'label', 0, (n) => int(n) && n >= 0, 'a label index (0, 1, ...)') } : {}),
    };
    const t = openTrained(positionals[0]!, values.runs);
    const gpu = await openGpu(values);
    try {
      const r = await sample(gpu, t, o);
      if (values.json) {
        console.log(JSON.stringify(r, null, 2));
        return 0;
      }
      console.log(`${r.prompt}${r.text}`);
      if (o.experts) {
        if (!r.routingLayers.length) console.error('(a dense model: there are no experts to show)');
        else console.log(`\n${expertView(r, Boolean(process.stdout.isTTY))}`);
      }
      console.error(`${r.tokens.length} tokens from trial ${r.trial} (step ${r.step}) in ${r.msPerToken.toFixed(1)} ms/token after the first (${(r.firstTokenMs / 1000).toFixed(1)} s, building the GPU pipelines): each a full forward over the ${r.context}-token window (no KV cache)`);
      return 0;
    } finally {
      gpu.destroy();
    }
  },
};
