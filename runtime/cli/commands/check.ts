import { parseArgs } from 'node:util';
import { loadPipeline, type LoadResult } from '../../../compiler/frontend/index.js';
import { CompileError, gpt2SpecOf } from '../../../compiler/lower/compile.js';
import { compileToFit, type FitResult, type MicroBatchSplit, splitMessage } from '../../../compiler/lower/fit.js';
import { loweringRefusal, type RuleCode } from '../../../compiler/rules/index.js';
import { error, renderDiagnostic, warning, type Diagnostic } from '../../../grammar/diagnostics.js';
import type { Command } from '../command.js';

/**
 * Print diagnostics to stderr, each once (a problem several trials or presets share is one problem),
 * each block ending with its own newline so nothing runs into the next line. `printed` carries the
 * keys already shown across calls. Returns the error and warning counts of what it printed.
 */
export function printDiagnostics(ds: readonly Diagnostic[], sources: ReadonlyMap<string, string>, opts: { color?: boolean; printed?: Set<string>; suffix?: string; json?: JsonDiagnostic[]; preset?: string } = {}): { errors: number; warnings: number } {
  const printed = opts.printed ?? new Set<string>();
  let errors = 0;
  let warnings = 0;
  for (const d of ds) {
    const key = `${d.span?.file}:${d.span?.start}:${d.severity}:${d.message}`;
    if (printed.has(key)) continue;
    printed.add(key);
    if (opts.json) opts.json.push(jsonOf(d, opts.preset));
    else console.error(`${renderDiagnostic(d, (f) => sources.get(f), opts.color ?? false)}${opts.suffix ?? ''}`);
    if (d.severity === 'error') errors++;
    else warnings++;
  }
  return { errors, warnings };
}

/** A diagnostic as `moec check --json` prints it (the editor-facing form): 1-based lines and columns. */
export interface JsonDiagnostic {
  file: string | null;
  line: number | null;
  col: number | null;
  endLine: number | null;
  endCol: number | null;
  severity: Diagnostic['severity'];
  code: string | null;
  message: string;
  hint: string | null;
  preset: string | null;
}

const jsonOf = (d: Diagnostic, preset: string | undefined): JsonDiagnostic => ({
  file: d.span?.file ?? null, line: d.span?.line ?? null, col: d.span?.col ?? null, endLine: d.span?.endLine ?? null, endCol: d.span?.endCol ?? null,
  severity: d.severity, code: d.code ?? null, message: d.message, hint: d.hint ?? null, preset: preset ?? null,
});

/**
 * What the lowering would refuse, for every trial: each setting once, with how many trials it
 * concerns and the first of them. Refusals that need the graph (a kernel grid past WebGPU's
 * limits) are found by compiling one trial of each distinct model shape, since only that decides them.
 */
interface Refusal { message: string; ptr: string; hint: string; code: RuleCode }

export function loweringDiagnostics(r: LoadResult): Diagnostic[] {
  const found = new Map<string, { refusal: Refusal; trials: string[] }>();
  const shapes = new Set<string>();
  const splits: [MicroBatchSplit, string][] = [];
  const note = (refusal: Refusal, trial: string) => {
    const key = `${refusal.ptr}\0${refusal.message}`;
    const f = found.get(key) ?? { refusal, trials: [] };
    f.trials.push(trial);
    found.set(key, f);
  };
  for (const t of r.trials) {
    const spec = gpt2SpecOf(t.config, t.id);
    const bad = loweringRefusal(t.config);
    if (bad) { note(bad, `${t.id} (${t.name})`); continue; }
    const shape = JSON.stringify({ ...spec, name: '', moe: t.config.model.moe, source: t.config.data[t.config.train.data]?.source.kind });
    if (shapes.has(shape)) continue;
    shapes.add(shape);
    // As `moec run` compiles it: a micro-batch past WebGPU's workgroup grid is split where that keeps
    // the training the same (compiler/lower/fit.ts), and refused where it would not. The device's
    // memory and binding limits are `moec compile --limits`'s.
    let fit: FitResult;
    try {
      fit = compileToFit(t.config, t.id, []);
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
      note(e, `${t.id} (${t.name})`);
      continue;
    }
    const grid: RuleCode = 'lower.grid-too-large';
    if ('refusal' in fit) note({ ...fit.refusal, code: grid }, `${t.id} (${t.name})`);
    else if ('unfit' in fit) note({ message: fit.unfit.problem.message, ptr: fit.unfit.problem.ptr ?? '/train/batch', hint: fit.unfit.problem.hint ?? 'lower the context or the model\'s size', code: grid }, `${t.id} (${t.name})`);
    else if (fit.split) splits.push([fit.split, `${t.id} (${t.name})`]);
  }
  const total = r.trials.length;
  const which = (trials: string[]) => (total === 1 ? '' : trials.length === total ? ` (every trial)` : ` (${trials.length} of ${total} trials, first ${trials[0]})`);
  const split = new Map<string, string[]>();
  for (const [s, trial] of splits) split.set(splitMessage(s), [...(split.get(splitMessage(s)) ?? []), trial]);
  return [
    ...[...found.values()].map(({ refusal, trials }) => error(`the lowering refuses this: ${refusal.message}${which(trials)}`, r.spanOf(refusal.ptr), refusal.hint, refusal.code)),
    ...[...split].map(([message, trials]) => warning(`${message}${which(trials)}`, r.spanOf('/train/batch'), 'set train.batch and train.accumulate to these values to make the split explicit')),
  ];
}

export const checkCommand: Command = {
  name: 'check',
  summary: 'check .moe files: syntax, names, values, references, sweeps',
  usage: `usage: moec check FILE... [--preset NAME]

Reads each file (and what it imports), resolves and validates it and every trial of its sweep,
checks each trial against what the lowering implements (the refusals \`moec run\` would make
before any GPU work; the device's memory and binding limits are \`moec compile --limits\`'s),
and prints each problem as file:line:col with the offending text underlined.
Without --preset, every preset the file defines is checked too.
Exit status 1 if any file has an error.
  --preset NAME  apply 'preset NAME { ... }' first
  --quiet        print only problems, no summary
  --json         print one JSON object to stdout instead: {ok, errors, warnings, trials, diagnostics},
                 each diagnostic {file, line, col, endLine, endCol, severity, code, message, hint, preset}
                 (code: the rule's code in the validation registry, e.g. moe.top-over-experts)`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { preset: { type: 'string' }, quiet: { type: 'boolean' }, json: { type: 'boolean' } } });
    if (positionals.length === 0) { console.error(this.usage); return 1; }
    const color = Boolean(process.stderr.isTTY);
    let errors = 0;
    let warnings = 0;
    let trials = 0;
    const json: JsonDiagnostic[] | undefined = values.json ? [] : undefined;
    for (const file of positionals) {
      const runs = [values.preset];
      const first = loadPipeline(file, values.preset ? { preset: values.preset } : {});
      const results = [first];
      if (!values.preset && first.ok) for (const p of first.presets) { runs.push(p); results.push(loadPipeline(file, { preset: p })); }
      const printed = new Set<string>();
      results.forEach((r, i) => {
        const n = printDiagnostics(r.ok ? [...r.diagnostics, ...loweringDiagnostics(r)] : r.diagnostics, r.sources, { color, printed, ...(json ? { json, ...(runs[i] ? { preset: runs[i] } : {}) } : {}), ...(runs[i] && i > 0 ? { suffix: `\n  (with --preset ${runs[i]})` } : {}) });
        errors += n.errors;
        warnings += n.warnings;
      });
      trials += first.trials.length;
    }
    if (json) {
      console.log(JSON.stringify({ ok: errors === 0, errors, warnings, trials, diagnostics: json }, null, 2));
      return errors ? 1 : 0;
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
