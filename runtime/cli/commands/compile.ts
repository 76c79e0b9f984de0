import { parseArgs } from 'node:util';
import { loadPipeline, type LoadResult, type Trial } from '../../../compiler/frontend/index.js';
import { CompileError, type CompiledTrial } from '../../../compiler/lower/compile.js';
import type { LoweringOptions } from '../../../compiler/lower/kernels.js';
import { loweringFor } from '../../gpu/lowering.js';
import { defaultLimits, type DeviceLimits, estimateTime, summarize, type PlanSummary } from '../../../compiler/lower/summary.js';
import { formatGraph } from '../../../compiler/lower/graph-text.js';
import { compileToFit, type FitResult } from '../../../compiler/lower/fit.js';
import { type DeviceProfile, profileNamed, profiles } from '../../../compiler/lower/profiles.js';
import { error, renderDiagnostic } from '../../../grammar/diagnostics.js';
import { UserError } from '../../../grammar/user-error.js';
import { adapterOption, limitsOf, openGpu } from '../adapter-flag.js';
import type { Command } from '../command.js';

const EMITS = ['summary', 'plan', 'wgsl', 'graph'] as const;
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

/**
 * Compiles a trial, turning a refusal into a diagnostic that points at the .moe setting. A trial whose
 * micro-batch does not fit the limits runs smaller micro-batches (lower/fit.ts compileToFit): the
 * chosen train.batch and train.accumulate are written into `t.config`, so the run's stored config,
 * eval, resume and the report see what ran. Its id stays: the file did not change, nor the math.
 */
export function compileOrExplain(r: LoadResult, t: Trial, limits: DeviceLimits | DeviceLimits[], lowering: LoweringOptions = {}): CompiledTrial {
  const fail = (message: string, ptr: string, hint: string): never => {
    const d = error(`trial ${t.id} (${t.name}): ${message}`, r.spanOf(ptr), hint);
    throw new UserError(renderDiagnostic(d, (f) => r.sources.get(f), Boolean(process.stderr.isTTY)), { preformatted: true });
  };
  let fit: FitResult;
  try {
    fit = compileToFit(t.config, t.id, limits, lowering);
  } catch (e) {
    if (e instanceof CompileError) return fail(e.message, e.ptr, e.hint);
    throw e;
  }
  if ('refusal' in fit) return fail(fit.refusal.message, fit.refusal.ptr, fit.refusal.hint);
  if ('unfit' in fit) {
    const { problem, limits: l, count } = fit.unfit;
    const on = l.name ? ` (profile ${l.name})` : '';
    return fail(`${count > 1 ? `${problem.message} (and ${count - 1} more over the device's limits)` : problem.message}${on}`, problem.ptr, problem.hint);
  }
  if (fit.split) {
    t.config.train.batch = fit.split.batch;
    t.config.train.accumulate = fit.split.accumulate;
  }
  return fit.compiled;
}

/** The profiles `--limits` names (comma-separated), or a UserError listing them. */
export function profilesOf(flag: string): DeviceProfile[] {
  return flag.split(',').map((n) => {
    const p = profileNamed(n.trim());
    if (!p) throw new UserError(`--limits '${n.trim()}' is not a device profile`, { hint: `use one or more of: ${profiles.map((q) => q.name).join(', ')} (comma-separated)` });
    return p;
  });
}

const duration = (s: number) => (s < 1 ? `${(s * 1000).toFixed(1)} ms` : s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : s < 172800 ? `${(s / 3600).toFixed(1)} h` : `${(s / 86400).toFixed(1)} days`);

/** One line per device: peak memory against its memory, and the step / trial time at its matmul rate. */
export function formatEstimates(t: Trial, s: PlanSummary, devices: { name: string; limits: DeviceLimits; flops?: number }[]): string {
  const ev = t.config.evaluate;
  // evaluate.batches counts written batches; a split plan's eval_step is one micro-batch.
  const perBatch = s.split ? s.split.accumulate / s.split.from.accumulate : 1;
  const run = { steps: t.config.train.steps, every: ev.every, batches: ev.batches * perBatch, sets: ev.perplexity.length + ev.experts.length };
  const L = devices.map((d) => {
    const mem = d.limits.memoryBytes ? `${bytes(s.peakBytes)} of ${bytes(d.limits.memoryBytes)} (${((100 * s.peakBytes) / d.limits.memoryBytes).toFixed(1)}%)` : `${bytes(s.peakBytes)} (device memory unknown)`;
    const bind = `largest binding ${bytes(s.largestBinding.bytes)} of ${bytes(d.limits.maxStorageBufferBindingSize)}`;
    if (!d.flops) return `  ${d.name.padEnd(17)} ${mem}, ${bind}; no matmul rate (pass --rate GFLOPS or a --limits profile that has one)`;
    const e = estimateTime(s, run, d.flops);
    return `  ${d.name.padEnd(17)} ${mem}, ${bind}; at ${human(d.flops, 'FLOP/s')}: ${duration(e.stepSeconds)} per step, ${duration(e.trialSeconds)} per trial (${run.steps} steps, ${e.evaluations} evaluations)`;
  });
  return ['  estimates         (time: every FLOP at the matmul rate, a lower bound)', ...L].join('\n');
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
    ...s.notes.map((n) => `  chosen            ${n}`),
  ];
  return L.join('\n');
}

export const compileCommand: Command = {
  name: 'compile',
  summary: 'compile trials to GPU plans: a summary, the plan JSON, or the WGSL',
  usage: `usage: moec compile FILE [--trial ID|N] [--preset NAME] [--emit summary|plan|wgsl|graph] [--adapter NAME] [--no-device] [--portable] [--limits NAME[,NAME]] [--rate GFLOPS]

Lowers each trial (or the one --trial names) to its Plan: kernels, dispatches per program, buffer
sizes, parameter count, FLOPs per step and peak memory. Buffers are checked against the GPU's
limits (the adapter's, or WebGPU's guaranteed minimums with --no-device).
  --trial ID|N   a trial id prefix or its number in 'moec expand'
  --emit KIND    summary (default), plan (JSON), wgsl (every kernel's source) or graph (the tensor
                 graph: tensors with shapes, ops with their kernels and bindings); all but summary need one trial
  --preset NAME  apply 'preset NAME { ... }' first
  --adapter NAME check against this adapter's limits
  --no-device    do not open a GPU; check against WebGPU's default limits (implies --portable)
  --portable     lower without adapter-specific kernels (as moec run --portable does)
  --limits NAMES check against device profiles instead of an adapter (implies --no-device), and
                 estimate memory and time on each: ${profiles.map((p) => p.name).join(', ')}
  --rate GFLOPS  the matmul rate for the time estimate (default: the profile's; on lavapipe its measured rate)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { trial: { type: 'string' }, preset: { type: 'string' }, emit: { type: 'string', default: 'summary' }, 'no-device': { type: 'boolean' }, portable: { type: 'boolean' }, limits: { type: 'string' }, rate: { type: 'string' }, ...adapterOption },
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
    const named = values.limits !== undefined ? profilesOf(values.limits) : undefined;
    let rate: number | undefined;
    if (values.rate !== undefined) {
      rate = Number(values.rate) * 1e9;
      if (!(rate > 0)) throw new UserError(`--rate '${values.rate}' is not a positive number of GFLOP/s`, { hint: 'e.g. --rate 19.5 (npm run bench -- --only matmul measures the adapter\'s best)' });
    }
    let devices: { name: string; limits: DeviceLimits; flops?: number }[] = [{ name: 'webgpu', limits: defaultLimits }];
    let lowering: LoweringOptions = {};
    if (named) devices = named.map((p) => ({ name: p.name, limits: p, ...(rate ?? p.matmulFlops ? { flops: rate ?? p.matmulFlops } : {}) }));
    else if (!values['no-device']) {
      const gpu = await openGpu(values);
      // A software adapter is taken to run at lavapipe's measured rate unless --rate says otherwise.
      const flops = rate ?? (gpu.info.software ? profileNamed('lavapipe')!.matmulFlops : undefined);
      devices = [{ name: 'this adapter', limits: limitsOf(gpu), ...(flops ? { flops } : {}) }];
      if (!values.portable) lowering = loweringFor(gpu);
      gpu.destroy();
    } else if (rate) devices[0]!.flops = rate;
    for (const t of trials) {
      const c = compileOrExplain(r, t, devices.map((d) => d.limits), lowering);
      if (emit === 'plan') console.log(JSON.stringify(c.plan, null, 2));
      else if (emit === 'graph') console.log(formatGraph(c));
      else if (emit === 'wgsl') for (const k of c.plan.kernels) console.log(`// ---- kernel ${k.name} (workgroup ${k.workgroupSize.join('x')})\n${k.wgsl.trim()}\n`);
      else {
        const s = summarize(c!);
        console.log(formatSummary(t, s));
        console.log(formatEstimates(t, s, devices));
      }
    }
    return 0;
  },
};
