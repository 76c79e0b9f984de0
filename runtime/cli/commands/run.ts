import { parseArgs } from 'node:util';
import { loadPipeline, type Trial } from '../../../compiler/frontend/index.js';
import type { CompiledTrial } from '../../../compiler/lower/compile.js';
import { renderDiagnostic } from '../../../grammar/diagnostics.js';
import { UserError } from '../../../grammar/user-error.js';
import { prepareSweepData, runSweep } from '../../run/sweep.js';
import { createSweepView, wantsLiveView } from '../../ui/sweep-view.js';
import { adapterOption, limitsOf, openGpu } from '../adapter-flag.js';
import type { Command } from '../command.js';
import { compileOrExplain } from './compile.js';
import { loweringFor } from '../../gpu/lowering.js';

/** Shell-style glob (* and ?) against a trial's id or name. */
function matches(pattern: string, t: Trial): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(t.id) || re.test(t.name) || t.id.startsWith(pattern);
}

export const runCommand: Command = {
  name: 'run',
  summary: 'train every trial of a sweep on the GPU, live, and write the report',
  usage: `usage: moec run FILE [--preset NAME] [--only PATTERN] [--steps N] [--out DIR] [--parallel N] [--resume] [--force] [--save-init] [--portable] [--adapter NAME]

Compiles every trial (all of them, before any training starts), prepares the data, trains the
trials one after another on the GPU and writes runs/<sweep>/ (configs, metrics, checkpoints) and
its report. A failing trial is marked failed and the sweep goes on. Ctrl-C stops after the current
step with a checkpoint; --resume continues from there and skips finished trials.
  --preset NAME    apply 'preset NAME { ... }' first (e.g. small)
  --only PATTERN   run only trials whose id or name matches (glob: * and ?)
  --steps N        override train.steps for every trial
  --out DIR        where runs go (default runs)
  --parallel N     train N trials at once on the GPU (default 1); each needs its plan's peak
                   memory on the device at the same time (moec compile prints it)
  --resume         continue an existing run directory
  --force          replace an existing run directory
  --save-init      also write each trial's initial weights (step 0) to <trial>/initial.safetensors,
                   kept beside the checkpoints (moec sample/eval/export read it by path)
  --portable       compile plans that use nothing adapter-specific (on lavapipe: the 8×8 matmul
                   instead of the faster subgroup one); the losses then match runs made that way
  --adapter NAME   the GPU to use (see moec doctor)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        preset: { type: 'string' }, only: { type: 'string' }, steps: { type: 'string' }, parallel: { type: 'string', default: '1' }, out: { type: 'string', default: 'runs' },
        resume: { type: 'boolean' }, force: { type: 'boolean' }, 'save-init': { type: 'boolean' }, portable: { type: 'boolean' }, ...adapterOption,
      },
    });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    if (values.resume && values.force) throw new UserError('--resume and --force contradict each other', { where: '--force', hint: '--resume continues the run directory, --force replaces it' });
    const file = positionals[0]!;
    const load = loadPipeline(file, values.preset ? { preset: values.preset } : {});
    for (const d of load.diagnostics) console.error(renderDiagnostic(d, (f) => load.sources.get(f), Boolean(process.stderr.isTTY)));
    if (!load.ok) return 1;
    let trials = load.trials;
    if (values.only !== undefined) {
      trials = trials.filter((t) => matches(values.only!, t));
      if (!trials.length) throw new UserError(`--only '${values.only}' matches none of the ${load.trials.length} trials`, { where: '--only', hint: 'see the ids and names with: moec expand ' + file });
    }
    if (values.steps !== undefined) {
      const n = Number(values.steps);
      if (!Number.isInteger(n) || n < 1) throw new UserError(`--steps '${values.steps}' is not a positive whole number`, { where: '--steps' });
      for (const t of trials) {
        t.config.train.steps = n;
        t.config.train.warmup = Math.min(t.config.train.warmup, Math.max(0, n - 1));
      }
    }
    const parallel = Number(values.parallel);
    if (!Number.isInteger(parallel) || parallel < 1) throw new UserError(`--parallel '${values.parallel}' is not a positive whole number`, { where: '--parallel' });
    const gpu = await openGpu(values);
    const stop = { requested: false };
    let view: ReturnType<typeof createSweepView> | undefined;
    const onSigint = () => {
      if (stop.requested) process.exit(130);
      stop.requested = true;
      const msg = 'stopping after this step (a checkpoint is written); Ctrl-C again quits at once';
      if (view) view.message(msg);
      else process.stderr.write(`\n${msg}\n`);
    };
    process.on('SIGINT', onSigint);
    try {
      // Every trial compiles (and fits the device) before any of them trains.
      const limits = limitsOf(gpu);
      const compiled = new Map<string, CompiledTrial>();
      const lowering = values.portable ? {} : loweringFor(gpu);
      for (const t of trials) compiled.set(t.id, compileOrExplain(load, t, limits, lowering));
      const data = await prepareSweepData(trials, (msg) => process.stderr.write(`${msg}\n`));
      view = createSweepView({ tty: wantsLiveView(process.stdout), stdout: process.stdout, stderr: process.stderr });
      const r = await runSweep({ file, load, trials, compiled, gpu, out: values.out!, resume: Boolean(values.resume), force: Boolean(values.force), listener: view.listener, stop, data, parallel, saveInit: Boolean(values['save-init']) });
      await view.done();
      view = undefined;
      console.log(`${r.done} done, ${r.failed} failed, ${r.stopped} stopped, ${r.skipped} skipped; report: ${r.reportPath ?? 'not written'}`);
      if (r.reportError) console.error(`error: the report could not be written: ${r.reportError}`);
      return r.failed > 0 || r.stopped > 0 || r.reportError ? 1 : 0;
    } finally {
      await view?.done();
      process.off('SIGINT', onSigint);
      gpu.destroy();
    }
  },
};
