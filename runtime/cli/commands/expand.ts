import { parseArgs } from 'node:util';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import type { Command } from '../command.js';
import { printDiagnostics } from './check.js';

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export const expandCommand: Command = {
  name: 'expand',
  summary: 'list the trials of a .moe sweep (a table, or --json)',
  usage: `usage: moec expand FILE [--preset NAME] [--json]

Prints every trial of the sweep: its stable id, its name, the parameter counts (total / active)
and the swept values. With --json, prints {pipeline, trials} with each trial's full resolved
configuration. Exit status 1 if the file has an error.
  --preset NAME  apply 'preset NAME { ... }' first
  --json         machine-readable output`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { preset: { type: 'string' }, json: { type: 'boolean' } } });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    const r = loadPipeline(positionals[0]!, values.preset ? { preset: values.preset } : {});
    printDiagnostics(r.diagnostics, r.sources, { color: Boolean(process.stderr.isTTY) });
    if (!r.ok) return 1;
    if (values.json) {
      console.log(JSON.stringify({ pipeline: r.pipeline, trials: r.trials }, null, 2));
      return 0;
    }
    const rows = r.trials.map((t) => [String(t.index + 1), t.id, t.name, human(t.params_count.total), human(t.params_count.active)]);
    const head = ['#', 'id', 'trial', 'total', 'active'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i >= 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
    console.log(line(head));
    for (const row of rows) console.log(line(row));
    console.log(`${r.trials.length} trial${r.trials.length === 1 ? '' : 's'}`);
    return 0;
  },
};
