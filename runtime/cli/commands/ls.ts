import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadRun } from '../../report/load.js';
import { trialRow } from '../../report/summary.js';
import { num } from '../../report/tables.js';
import { DEFAULT_RUNS, listRuns } from '../../store/find.js';
import type { Command } from '../command.js';

export const lsCommand: Command = {
  name: 'ls',
  summary: 'list past runs: sweeps and their trials with status and perplexity',
  usage: `usage: moec ls [DIR] [--json]

Lists every run under DIR (default: runs/) or the run DIR itself: each sweep with its .moe file and
adapter, then its trials with id, status, steps done and the last validation perplexity.
  --json  machine-readable output`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } });
    if (positionals.length > 1) { console.error(this.usage); return 1; }
    const root = positionals[0] ?? DEFAULT_RUNS;
    const runs = listRuns(root).map((d) => {
      const run = loadRun(d);
      return { dir: d, index: run.index, rows: run.trials.map(trialRow) };
    });
    if (values.json) {
      console.log(JSON.stringify(runs.map((r) => ({
        dir: r.dir, sweep: r.index.sweep, file: r.index.file, adapter: r.index.adapter, updated: r.index.updated,
        trials: r.rows.map((t) => ({ id: t.id, name: t.name, status: t.status, step: t.step, steps: t.steps, ppl_last: t.ppl_last })),
      })), null, 2));
      return 0;
    }
    if (!runs.length) { console.log(`no runs under ${root}`); return 0; }
    for (const r of runs) {
      const counts = new Map<string, number>();
      for (const t of r.rows) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
      const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
      console.log(`${r.index.sweep}  ${r.dir}  (${r.index.file}, ${r.index.adapter}; updated ${r.index.updated})`);
      console.log(`  ${r.rows.length} trial${r.rows.length === 1 ? '' : 's'}: ${summary}`);
      const head = ['id', 'trial', 'status', 'step', 'valid ppl'];
      const rows = r.rows.map((t) => [t.id, t.name, t.status, `${t.step}/${t.steps ?? '?'}`, num(t.ppl_last)]);
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
      const line = (cells: string[]) => `  ${cells.map((c, i) => (i >= 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd()}`;
      console.log(line(head));
      for (const row of rows) console.log(line(row));
      console.log('');
    }
    console.log(`${runs.length} run${runs.length === 1 ? '' : 's'} under ${path.resolve(root)}`);
    return 0;
  },
};
