import path from 'node:path';
import { parseArgs } from 'node:util';
import { UserError } from '../../../grammar/user-error.js';
import { prepareDataset, type PreparedText } from '../../data/index.js';
import { resolveEvalData } from '../../eval/data-spec.js';
import { evaluateTrial, type TrialEval } from '../../eval/evaluate.js';
import { openTrained, type TrainedTrial } from '../../eval/trained.js';
import { evalName, writeEval } from '../../eval/write.js';
import { RunStore } from '../../store/run-store.js';
import { adapterOption, openGpu } from '../adapter-flag.js';
import type { Command } from '../command.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'perplexity and expert assignment by label of trained trials on any data set',
  usage: `usage: moec eval TRIAL|RUNS/SWEEP --data DATA [--by LABEL] [--name NAME] [--batches N] [--limit CHARS] [--text-field F] [--label-field F] [--runs DIR] [--adapter NAME]

Scores TRIAL's latest checkpoint, or every finished trial of the sweep directory RUNS/SWEEP, on DATA
with the trainer's evaluation (whole split, the trial's batch, dropout off), and writes
SWEEP/eval/NAME.{json,csv,md} and NAME-experts.csv beside the sweep's report.
DATA is one of:
  NAME[.valid|.train]       a data set of the trial's own pipeline (default split: valid)
  FILE.moe:NAME[.split]     a data block of any .moe file
  brown, fortunes[de,it] .. a built-in corpus, every document
  PATH                      a text file, a folder of them (folder name = label), .jsonl or .parquet
Data cut with another tokenizer than the model's is refused.
  --by LABEL        also the expert assignment per MoE layer, by this label's values
  --name NAME       the output files' name (default: from DATA)
  --batches N       only the first N batches (default: all)
  --limit CHARS     read at most CHARS characters of a corpus or file (default: all)
  --text-field F, --label-field F   the fields of a JSONL or Parquet file (default text, none)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        data: { type: 'string' }, by: { type: 'string' }, name: { type: 'string' }, batches: { type: 'string' }, limit: { type: 'string' },
        'text-field': { type: 'string' }, 'label-field': { type: 'string' }, runs: { type: 'string' }, ...adapterOption,
      },
    });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    if (!values.data) throw new UserError('--data DATA is required', { where: '--data', hint: 'e.g. --data brown, --data my-text.txt, --data wiki.valid' });
    const whole = (flag: string, v: string | undefined) => {
      if (v === undefined) return 0;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UserError(`--${flag} '${v}' is not a positive whole number`, { where: `--${flag}` });
      return n;
    };
    const batches = whole('batches', values.batches);
    const limit = whole('limit', values.limit);
    const target = positionals[0]!;
    const trials: TrainedTrial[] = [];
    const skipped: { trial: string; why: string }[] = [];
    let sweepDir: string;
    if (RunStore.exists(target)) {
      sweepDir = target;
      const store = RunStore.open(target);
      for (const t of store.index.trials) {
        const ts = store.trial(t.id);
        const ref = ts.latestCheckpoint();
        if (ts.readStatus()?.state !== 'done' || !ref) { skipped.push({ trial: t.id, why: `not finished (${ts.readStatus()?.state ?? 'pending'})` }); continue; }
        trials.push(openTrained(ref.path));
      }
      if (!trials.length) throw new UserError('no finished trial in this sweep', { where: target, hint: `finish it first: moec run ${store.index.file} --resume` });
    } else {
      const t = openTrained(target, values.runs);
      trials.push(t);
      sweepDir = t.sweepDir;
    }
    const prepared = new Map<string, Promise<PreparedText>>();
    const gpu = await openGpu(values);
    const results: TrialEval[] = [];
    try {
      for (const t of trials) {
        const spec = resolveEvalData(values.data, t.record.config, { ...(values['text-field'] ? { textField: values['text-field'] } : {}), ...(values['label-field'] ? { labelField: values['label-field'] } : {}), limit });
        const key = JSON.stringify(spec.ds);
        let p = prepared.get(key);
        if (!p) {
          p = prepareDataset(spec.ds, { log: (m) => process.stderr.write(`${m}\n`) }).then((d) => {
            if (d.kind !== 'text') throw new UserError(`data '${spec.label}' is the synthetic cluster task, not text`, { where: '--data' });
            return d;
          });
          prepared.set(key, p);
        }
        const r = await evaluateTrial(gpu, t, await p, spec.split, spec.label, values.by, batches);
        results.push(r);
        console.log(`${r.trial}  ${r.name}: ${spec.label} (${r.split}, ${r.tokens} tokens) loss ${r.loss.toFixed(4)}, perplexity ${r.ppl.toFixed(2)}`);
      }
    } finally {
      gpu.destroy();
    }
    const files = writeEval(sweepDir, values.name ?? evalName(values.data), { data: values.data, by: values.by ?? null, results, skipped });
    for (const s of skipped) console.log(`${s.trial}  skipped: ${s.why}`);
    console.log(`wrote ${files.map((f) => path.relative('.', f)).join(', ')}`);
    return 0;
  },
};
