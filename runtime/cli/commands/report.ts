import path from 'node:path';
import { parseArgs } from 'node:util';
import { effectHead, effectRows } from '../../report/effects-section.js';
import { writeReport } from '../../report/report.js';
import { openRunDir } from '../../store/find.js';
import type { Command } from '../command.js';

export const reportCommand: Command = {
  name: 'report',
  summary: 'write report.md, CSV/JSON tables and SVG/PNG figures for a run',
  usage: `usage: moec report DIR

Reads the run in DIR (e.g. runs/<sweep>, as written by 'moec run') and writes, inside it:
  report.md          the trial table (validation perplexity mean ± std over seeds, parameters,
                     tokens/s, wall time), failed and unfinished trials, and the figures
  report.csv         the table per configuration; report-trials.csv: one row per trial
  report.json        both tables and the effects
  effects.csv        each swept value against the dimension's first value, paired by seed, with
                     its 95% t-interval and whether it is beyond seed noise (also printed here)
  figures/*.svg|png  perplexity over training, expert assignment by label per MoE layer,
                     expert load over training
'moec run' writes the same report when a sweep ends.`,
  async run(argv) {
    const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    const dir = positionals[0]!;
    openRunDir(dir);
    const r = await writeReport(dir);
    const done = r.trials.filter((t) => t.status === 'done').length;
    console.log(`${r.trials.length} trials (${done} done) in ${r.groups.length} configurations`);
    console.log(`wrote ${r.files.markdown}`);
    console.log(`      ${r.files.csv}, ${path.basename(r.files.trialsCsv)}, ${path.basename(r.files.json)}`);
    console.log(`      ${r.files.figures.length} figures in ${path.join(dir, 'figures')}`);
    for (const m of r.effects) {
      console.log(`\neffects on ${m.metric} (paired by seed, 95% t-interval):`);
      console.log(alignColumns([effectHead, ...effectRows([...m.named, ...m.effects], 3)]));
    }
    return 0;
  },
};

/** Plain-text columns, each padded to its widest cell. */
function alignColumns(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)));
  return rows.map((r) => `  ${r.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join('  ')}`.trimEnd()).join('\n');
}
