import { parseArgs } from 'node:util';
import { UserError } from '../../../grammar/user-error.js';
import { openTrained } from '../../eval/trained.js';
import { exportTrial, type ExportFormat } from '../../export/export.js';
import type { ExportDtype } from '../../export/safetensors-f16.js';
import type { Command } from '../command.js';

export const exportCommand: Command = {
  name: 'export',
  summary: "write a trial's weights as a Hugging Face GPT-2 checkpoint or a PyTorch module",
  usage: `usage: moec export TRIAL|CHECKPOINT --out DIR [--format hf|torch] [--dtype f32|f16] [--runs DIR]

Writes the weights of TRIAL's latest checkpoint (or of CHECKPOINT, a .safetensors file inside a
run) to DIR, without optimiser state, with the .moe configuration and the moec version in the
safetensors metadata. See docs/AFTER-TRAINING.md.
  --format hf     (default) a dense trial: config.json + model.safetensors in GPT-2's layout, as
                  transformers' GPT2LMHeadModel loads it; an MoE trial: config.json +
                  model.safetensors + modeling_moec.py, a transformers remote-code model
  --format torch  config.json + model.safetensors + modeling_moec.py (dense or MoE), loadable with
                  plain PyTorch: MoecForCausalLM.from_pretrained(DIR)
  --dtype f16     half-precision weights (default f32)
  --runs DIR      where the runs are (default runs/)
Refused: Soft MoE (dispatch soft) and the cluster task's patch model.`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' }, format: { type: 'string', default: 'hf' }, dtype: { type: 'string', default: 'f32' }, runs: { type: 'string' } } });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    if (!values.out) throw new UserError('--out DIR is required', { where: '--out', hint: 'e.g. --out exports/my-model' });
    if (values.format !== 'hf' && values.format !== 'torch') throw new UserError(`--format '${values.format}' is not hf or torch`, { where: '--format' });
    if (values.dtype !== 'f32' && values.dtype !== 'f16') throw new UserError(`--dtype '${values.dtype}' is not f32 or f16`, { where: '--dtype' });
    const t = openTrained(positionals[0]!, values.runs);
    const r = exportTrial(t, { format: values.format as ExportFormat, out: values.out, dtype: values.dtype as ExportDtype });
    console.log(`exported trial ${t.record.id} (step ${t.step}) as ${r.layout === 'gpt2' ? 'a Hugging Face GPT-2 checkpoint' : 'a moec PyTorch module'}: ${r.tensors} tensors, ${values.dtype}`);
    for (const f of r.files) console.log(`  ${f}`);
    return 0;
  },
};
