import { parseArgs } from 'node:util';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { renderDiagnostic, type Diagnostic } from '../../../grammar/diagnostics.js';
import type { Command } from '../command.js';

/**
 * Print diagnostics to stderr, each once (a problem several trials or presets share is one problem),
 * each block ending with its own newline so nothing runs into the next line. `printed` carries the
 * keys already shown across calls. Returns the error and warning counts of what it printed.
 */
export function printDiagnostics(ds: readonly Diagnostic[], sources: ReadonlyMap<string, string>, opts: { color?: boolean; printed?: Set<string>; suffix?: string } = {}): { errors: number; warnings: number } {
  const printed = opts.printed ?? new Set<string>();
  let errors = 0;
  let warnings = 0;
  for (const d of ds) {
    const key = `${d.span?.file}:${d.span?.start}:${d.severity}:${d.message}`;
    if (printed.has(key)) continue;
    printed.add(key);
    console.error(`${renderDiagnostic(d, (f) => sources.get(f), opts.color ?? false)}${opts.suffix ?? ''}`);
    if (d.severity === 'error') errors++;
    else warnings++;
  }
  return { errors, warnings };
}

export const checkCommand: Command = {
  name: 'check',
  summary: 'check .moe files: syntax, names, values, references, sweeps',
  usage: `usage: moec check FILE... [--preset NAME]

Reads each file (and what it imports), resolves and validates it and every trial of its sweep,
and prints each problem as file:line:col with the offending text underlined.
Without --preset, every preset the file defines is checked too.
Exit status 1 if any file has an error.
  --preset NAME  apply 'preset NAME { ... }' first
  --quiet        print only problems, no summary`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { preset: { type: 'string' }, quiet: { type: 'boolean' } } });
    if (positionals.length === 0) { console.error(this.usage); return 1; }
    const color = Boolean(process.stderr.isTTY);
    let errors = 0;
    let warnings = 0;
    let trials = 0;
    for (const file of positionals) {
      const runs = [values.preset];
      const first = loadPipeline(file, values.preset ? { preset: values.preset } : {});
      const results = [first];
      if (!values.preset && first.ok) for (const p of first.presets) { runs.push(p); results.push(loadPipeline(file, { preset: p })); }
      const printed = new Set<string>();
      results.forEach((r, i) => {
        const n = printDiagnostics(r.diagnostics, r.sources, { color, printed, ...(runs[i] && i > 0 ? { suffix: `\n  (with --preset ${runs[i]})` } : {}) });
        errors += n.errors;
        warnings += n.warnings;
      });
      trials += first.trials.length;
    }
    if (!values.quiet) {
      const files = `${positionals.length} file${positionals.length === 1 ? '' : 's'}`;
      const summary = errors
        ? `${files}: ${errors} error${errors === 1 ? '' : 's'}${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}`
        : `${files} ok: ${trials} trial${trials === 1 ? '' : 's'}${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}`;
      (errors ? console.error : console.log)(summary);
    }
    return errors ? 1 : 0;
  },
};
