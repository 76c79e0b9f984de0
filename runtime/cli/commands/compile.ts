import { parseArgs } from 'node:util';
import { loadPipeline, type LoadResult, type Trial } from '../../../compiler/frontend/index.js';
import { CompileError, compileTrial, type CompiledTrial } from '../../../compiler/lower/compile.js';
import type { LoweringOptions } from '../../../compiler/lower/kernels.js';
import { loweringFor } from '../../gpu/lowering.js';
import { defaultLimits, type DeviceLimits, limitProblems, summarize, type PlanSummary } from '../../../compiler/lower/summary.js';
import { error, renderDiagnostic } from '../../../grammar/diagnostics.js';
import { UserError } from '../../../grammar/user-error.js';
import { adapterOption, limitsOf, openGpu } from '../adapter-flag.js';
import type { Command } from '../command.js';

const EMITS = ['summary', 'plan', 'wgsl'] as const;
type Emit = (typeof EMITS)[number];

export const human = (n: number, unit = '') => {
  for (const [d, s] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']] as const) if (n >= d) return `${(n / d).toFixed(2)} ${s}${unit}`;
  return `${n} ${unit}`.trimEnd();
};
export const bytes = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

/** Picks the trials `--trial` names (id prefix, or 1-based index); all of them without it. */
export function selectTrials(r: LoadResult, sel: string | undefined, file: string): Trial[] {
  if (sel === undefined) return r.trials;
  const byIndex = /^\d+$/.test(sel) ? r.trials[Number(sel) - 1] : undefined;
  const found = byIndex ? [byIndex] : r.trials.filter((t) => t.id.startsWith(sel));
  if (found.length === 1) return found;
  const list = r.trials.map((t, i) => `  ${i + 1}  ${t.id}  ${t.name}`).join('\n');
  throw new UserError(found.length ? `--trial '${sel}' matches ${found.length} trials of ${file}` : `--trial '${sel}' matches no trial of ${file}`, { hint: `give more of the id, or the trial's number:\n${list}` });
}

/** Compiles a trial, turning a refusal into a diagnostic that points at the .moe setting. */
export function compileOrExplain(r: LoadResult, t: Trial, limits: DeviceLimits, lowering: LoweringOptions = {}): CompiledTrial {
  const fail = (message: string, ptr: string, hint: string): never => {
    const d = error(`trial ${t.id} (${t.name}): ${message}`, r.spanOf(ptr), hint);
    throw new UserError(renderDiagnostic(d, (f) => r.sources.get(f), Boolean(process.stderr.isTTY)), { preformatted: true });
  };
  let c: CompiledTrial;
  try {
    c = compileTrial(t.config, t.id, lowering);
  } catch (e) {
    if (e instanceof CompileError) return fail(e.message, e.ptr, e.hint);
    throw e;
  }
  const problems = limitProblems(c, limits);
  const [worst] = problems;
  if (worst) fail(problems.length > 1 ? `${worst.message} (and ${problems.length - 1} more over the device's limits)` : worst.message, worst.ptr, worst.hint);
  return c;
}

export function formatSummary(t: Trial, s: PlanSummary): string {
  const L = [
    `trial ${t.id}  ${t.name}`,
    `  parameters        ${human(s.params)} (front end counted ${human(t.params_count.total)} total, ${human(t.params_count.active)} active)`,
    `  kernels           ${s.kernels} distinct`,
    `  dispatches        ${Object.entries(s.dispatches).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  FLOPs per step    ${human(s.flopsPerStep, 'FLOP')} (${human(s.flopsPerStep / s.tokensPerStep, 'FLOP')} per ${s.unit}, ${s.tokensPerStep} ${s.unit}s)`,
    `  memory            ${Object.entries(s.bytesByRole).map(([k, v]) => `${k} ${bytes(v)}`).join(', ')}`,
    `  activations       ${bytes(s.activations.plannedBytes)} in ${s.activations.regions} reused regions (${bytes(s.activations.naiveBytes)} without reuse)`,
    `  peak memory       ${bytes(s.peakBytes)} (everything is allocated up front)`,
    `  largest buffer    ${s.largestBinding.name} ${bytes(s.largestBinding.bytes)}`,
    `  lowering          ${s.lowering.length ? `${s.lowering.join(', ')} (for this adapter)` : 'portable'}`,
  ];
  return L.join('\n');
}

export const compileCommand: Command = {
  name: 'compile',
  summary: 'compile trials to GPU plans: a summary, the plan JSON, or the WGSL',
  usage: `usage: moec compile FILE [--trial ID|N] [--preset NAME] [--emit summary|plan|wgsl] [--adapter NAME] [--no-device] [--portable]

Lowers each trial (or the one --trial names) to its Plan: kernels, dispatches per program, buffer
sizes, parameter count, FLOPs per step and peak memory. Buffers are checked against the GPU's
limits (the adapter's, or WebGPU's guaranteed minimums with --no-device).
  --trial ID|N   a trial id prefix or its number in 'moec expand'
  --emit KIND    summary (default), plan (JSON) or wgsl (every kernel's source); plan and wgsl need one trial
  --preset NAME  apply 'preset NAME { ... }' first
  --adapter NAME check against this adapter's limits
  --no-device    do not open a GPU; check against WebGPU's default limits (implies --portable)
  --portable     lower without adapter-specific kernels (as moec run --portable does)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { trial: { type: 'string' }, preset: { type: 'string' }, emit: { type: 'string', default: 'summary' }, 'no-device': { type: 'boolean' }, portable: { type: 'boolean' }, ...adapterOption },
    });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    const emit = values.emit as Emit;
    if (!EMITS.includes(emit)) throw new UserError(`--emit '${values.emit}' is not one of ${EMITS.join(', ')}`);
    const file = positionals[0]!;
    const r = loadPipeline(file, values.preset ? { preset: values.preset } : {});
    for (const d of r.diagnostics) console.error(renderDiagnostic(d, (f) => r.sources.get(f), Boolean(process.stderr.isTTY)));
    if (!r.ok) return 1;
    const trials = selectTrials(r, values.trial, file);
    if (emit !== 'summary' && trials.length !== 1) throw new UserError(`--emit ${emit} prints one trial; ${file} has ${trials.length}`, { hint: 'pick one with --trial ID (see moec expand)' });
    let limits = defaultLimits;
    let lowering: LoweringOptions = {};
    if (!values['no-device']) {
      const gpu = await openGpu(values);
      limits = limitsOf(gpu);
      if (!values.portable) lowering = loweringFor(gpu);
      gpu.destroy();
    }
    for (const t of trials) {
      const c = compileOrExplain(r, t, limits, lowering);
      if (emit === 'plan') console.log(JSON.stringify(c.plan, null, 2));
      else if (emit === 'wgsl') for (const k of c.plan.kernels) console.log(`// ---- kernel ${k.name} (workgroup ${k.workgroupSize.join('x')})\n${k.wgsl.trim()}\n`);
      else console.log(formatSummary(t, summarize(c)));
    }
    return 0;
  },
};
