import { parseArgs } from 'node:util';
import type { TrialConfig } from '../../../compiler/frontend/types.js';
import { loadRun } from '../../report/load.js';
import { trialRow } from '../../report/summary.js';
import { duration, human, num } from '../../report/tables.js';
import { DEFAULT_RUNS, findTrial } from '../../store/find.js';
import type { Command } from '../command.js';

function describeModel(c: TrialConfig): string {
  const m = c.model;
  const base = `layers ${m.layers}, width ${m.width}, heads ${m.heads}, ffn ${m.ffn}, context ${m.context}, vocab ${m.vocab}`;
  if (!m.moe) return `${base}; dense`;
  const e = m.moe;
  return `${base}; MoE layers [${e.layers.join(', ')}]: ${e.experts} experts, top ${e.top}, unit ${e.unit}, scope ${e.scope}, router ${e.router}${e.label ? `(${e.label})` : ''}, gate ${e.gate}, ${e.dropless ? 'dropless' : `capacity ${e.capacity}`}, balance ${e.balance}, zloss ${e.zloss}`;
}

export const showCommand: Command = {
  name: 'show',
  summary: 'show one trial of a past run: config, status, last metrics, checkpoints',
  usage: `usage: moec show TRIAL [--runs DIR] [--json]

TRIAL is a trial id or a unique prefix of one (as 'moec ls' prints), or SWEEP/ID, searched in
every run under DIR (default: runs/).
  --runs DIR  where the runs are
  --json      the trial's config, status, metrics summary and checkpoints as JSON`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { runs: { type: 'string' }, json: { type: 'boolean' } } });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    const found = findTrial(values.runs ?? DEFAULT_RUNS, positionals[0]!);
    const run = loadRun(found.store.dir);
    const t = run.trials.find((x) => x.id === found.id)!;
    const row = trialRow(t);
    const lastTrain = t.metrics.filter((m) => m.kind === 'train').at(-1) ?? null;
    const lastEval = t.evals.at(-1) ?? null;
    if (values.json) {
      console.log(JSON.stringify({ sweep: run.index.sweep, dir: t.dir, trial: t.record, status: t.status, state: t.state, last_train: lastTrain, last_eval: lastEval, ppl_avg: row.ppl_avg, average: row.average, checkpoints: t.checkpoints }, null, 2));
      return 0;
    }
    const out: string[] = [];
    out.push(`trial ${t.id}  ${t.name}`);
    out.push(`  sweep       ${run.index.sweep} (${run.index.file})  ${t.dir}`);
    const s = t.status;
    out.push(`  status      ${t.state}${s ? `, step ${s.step}/${s.steps}, wall ${duration(s.wall_s)}, ${num(s.tokens_per_s, 0)} tokens/s on ${s.adapter}` : ''}`);
    if (s) out.push(`  time        started ${s.started}${s.finished ? `, finished ${s.finished}` : ''}`);
    if (s?.error) out.push(`  error       ${s.error}`);
    const rec = t.record;
    if (rec) {
      const params = Object.entries(rec.params).filter(([k]) => k !== 'train.seed').map(([k, v]) => `${k}=${v}`).join(', ');
      out.push(`  swept       ${params || '(nothing)'}; seed ${rec.seed}${rec.baseline ? `; dense baseline, same ${rec.baseline} as ${rec.matches ?? '?'}` : ''}`);
      out.push(`  parameters  ${human(rec.params_count.total)} total, ${human(rec.params_count.active)} active`);
      out.push(`  model       ${describeModel(rec.config)}`);
      const tr = rec.config.train;
      out.push(`  train       ${tr.steps} steps, batch ${tr.batch}, ${tr.optimizer} lr ${tr.lr} wd ${tr.wd}, ${tr.schedule} warmup ${tr.warmup}, ${tr.precision}`);
    } else out.push('  config      not written yet (the trial has not started)');
    out.push(lastTrain ? `  last train  step ${lastTrain.step}: loss ${lastTrain.loss.toFixed(4)}, lr ${lastTrain.lr.toPrecision(3)}, ${num(lastTrain.tokens_per_s, 0)} tokens/s` : '  last train  none');
    out.push(lastEval ? `  last eval   step ${lastEval.step}: valid loss ${lastEval.valid_loss.toFixed(4)}, ppl ${num(lastEval.valid_ppl)} (mean of last ${row.average}: ${num(row.ppl_avg)}; ${t.evals.length} evals)` : '  last eval   none');
    if (t.checkpoints.length) for (const c of t.checkpoints) out.push(`  checkpoint  step ${c.step}  ${human(c.bytes)}B  ${c.path}`);
    else out.push('  checkpoints none');
    console.log(out.join('\n'));
    return 0;
  },
};
