import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadPipeline, type Trial } from '../../../compiler/frontend/index.js';
import type { CompiledTrial } from '../../../compiler/lower/compile.js';
import { renderDiagnostic } from '../../../grammar/diagnostics.js';
import { UserError } from '../../../grammar/user-error.js';
import { lockSweep, prepareSweepData, runSweep, sweepDir } from '../../run/sweep.js';
import { createSweepView, wantsLiveView } from '../../ui/sweep-view.js';
import { adapterOption, limitsOf, openGpu } from '../adapter-flag.js';
import type { Command } from '../command.js';
import { compileOrExplain } from './compile.js';
import { formatTrialProfile } from '../../run/dispatch-profile.js';
import { loweringFor } from '../../gpu/lowering.js';
import { runQueueSweep } from '../../queue/coordinator.js';
import { parseRedisUrl, scrubArgv } from '../../queue/redis-url.js';
import path from 'node:path';
import { runOnSlurm } from './run-slurm.js';

/** Shell-style glob (* and ?) against a trial's id or name. */
function matches(pattern: string, t: Trial): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(t.id) || re.test(t.name) || t.id.startsWith(pattern);
}

export const runCommand: Command = {
  name: 'run',
  summary: 'train every trial of a sweep on the GPU, live, and write the report',
  usage: `usage: moec run FILE [--preset NAME] [--only PATTERN] [--steps N] [--out DIR] [--parallel N] [--resume] [--force] [--save-init] [--portable] [--adapter NAME]
       moec run FILE --queue redis://[:PASSWORD@]HOST:PORT [--attempts N] [--preset NAME] [--only PATTERN] [--steps N] [--out DIR] [--portable]
       moec run FILE --slurm [--partition P] [--time HH:MM:SS] [--max-parallel M] [--dry-run] [...]

Compiles every trial (all of them, before any training starts), prepares the data, trains the
trials one after another on the GPU and writes runs/<sweep>/ (configs, metrics, checkpoints) and
its report. A failing trial is marked failed and the sweep goes on. Ctrl-C (or SIGTERM) stops after
the current step with a checkpoint; --resume continues from there and skips finished trials.
  --preset NAME    apply 'preset NAME { ... }' first (e.g. small)
  --only PATTERN   run only trials whose id or name matches (glob: * and ?)
  --steps N        override train.steps for every trial
  --out DIR        where runs go (default runs)
  --parallel N     train N trials at once on the GPU (default 1); each needs its plan's peak
                   memory on the device at the same time (moec compile prints it)
  --resume         continue an existing run directory
  --force          run the chosen trials again from scratch: removes the records of exactly those
                   trials (says which); trials --only leaves out keep theirs
  --save-init      also write each trial's initial weights (step 0) to <trial>/initial.safetensors,
                   kept beside the checkpoints (moec sample/eval/export read it by path)
  --profile        once each trial is done, time every program of its plan per dispatch (GPU
                   timestamps where the adapter has them, else the host clock around one submit per
                   dispatch; the output says which), print the training step's slowest dispatches
                   and each other program's total after the sweep, and write every dispatch to
                   <trial>/profile.json; the extra steps run after the last checkpoint
  --portable       compile plans that use nothing adapter-specific (on lavapipe: the 8×8 matmul
                   instead of the faster subgroup one); the losses then match runs made that way
  --adapter NAME   the GPU to use (see moec doctor)
  --queue URL      do not train here: put the trials not yet done on a Redis queue (BullMQ) for
                   'moec worker' processes on any number of machines, and follow them live; Ctrl-C
                   detaches (the sweep goes on), the same command again re-attaches (docs/DISTRIBUTED.md)
  --attempts N     with --queue: tries per trial when its process crashes (default 3; a bad
                   configuration or data fails at once)
  --collapse-share S  warn in the view when one expert takes more than this share of a
                   layer's tokens over a logging window (0 < S <= 1; default 0.5), or experts go dead
  --slurm          submit the trials not yet done as a Slurm job array (a task per trial) and
                   follow it; the run directory (--out) must be on a filesystem the compute nodes
                   share. See docs/DISTRIBUTED.md. Ctrl-C stops following; the tasks go on.
  --partition P    the Slurm partition (default: the cluster's)
  --time T         each task's time limit (HH:MM:SS); a task near it checkpoints and is requeued
  --max-parallel M at most M tasks at once (--array=...%M)
  --dry-run        print the job script and submit nothing`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        preset: { type: 'string' }, only: { type: 'string' }, steps: { type: 'string' }, parallel: { type: 'string', default: '1' }, out: { type: 'string', default: 'runs' },
        resume: { type: 'boolean' }, force: { type: 'boolean' }, 'save-init': { type: 'boolean' }, profile: { type: 'boolean' }, portable: { type: 'boolean' }, queue: { type: 'string' }, attempts: { type: 'string' }, ...adapterOption,
        'collapse-share': { type: 'string' },
        slurm: { type: 'boolean' }, partition: { type: 'string' }, time: { type: 'string' }, 'max-parallel': { type: 'string' }, 'dry-run': { type: 'boolean' },
      },
    });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    const collapseShare = collapseShareOf(values['collapse-share']);
    if (values.resume && values.force) throw new UserError('--resume and --force contradict each other', { where: '--force', hint: '--resume continues the run directory, --force replaces it' });
    if (values.profile && (values.queue !== undefined || values.slurm)) throw new UserError(`--profile applies to a sweep trained here, not with --${values.slurm ? 'slurm' : 'queue'}`, { where: '--profile', hint: 'profile one trial locally: moec run FILE --only ID --steps 2 --profile' });
    if (values.queue !== undefined) {
      for (const flag of ['force', 'parallel', 'adapter'] as const) {
        if (flag === 'parallel' ? values.parallel !== '1' : values[flag] !== undefined) throw new UserError(`--${flag} does not apply with --queue`, { where: `--${flag}`, hint: flag === 'force' ? 'a queued sweep always resumes; delete the run directory to start again' : "the workers choose: 'moec worker --adapter NAME --concurrency N'" });
      }
    } else if (values.attempts !== undefined) throw new UserError('--attempts applies only with --queue', { where: '--attempts' });
    // A queued sweep names its file absolutely: workers compile it from the job, on other machines.
    const file = values.queue !== undefined ? path.resolve(positionals[0]!) : positionals[0]!;
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
    for (const flag of ['partition', 'time', 'max-parallel', 'dry-run'] as const) {
      if (values[flag] !== undefined && !values.slurm) throw new UserError(`--${flag} applies to Slurm submissions only`, { where: `--${flag}`, hint: 'add --slurm' });
    }
    if (values.slurm && values.queue !== undefined) throw new UserError('--slurm and --queue are two ways to run a sweep elsewhere: choose one', { where: '--queue' });
    if (values.slurm) return runOnSlurm({ file, trials, preset: values.preset ?? null, steps: values.steps === undefined ? null : Number(values.steps), out: values.out!, resume: Boolean(values.resume), force: Boolean(values.force), portable: Boolean(values.portable), adapter: values.adapter ?? null, partition: values.partition, time: values.time, maxParallel: values['max-parallel'], dryRun: Boolean(values['dry-run']) });
    if (values.queue !== undefined) return runQueued(file, load, trials, values.queue, values);
    const parallel = Number(values.parallel);
    if (!Number.isInteger(parallel) || parallel < 1) throw new UserError(`--parallel '${values.parallel}' is not a positive whole number`, { where: '--parallel' });
    const out = values.out!;
    if (existsSync(out) && !statSync(out).isDirectory()) throw new UserError(`'${out}' is a file, not a directory`, { where: '--out', hint: 'name a directory for the runs (it is created if missing), e.g. --out runs' });
    // Refuse a second writer before compiling anything; held until the run ends.
    const lock = lockSweep(sweepDir(values.out!, file, load.pipeline?.preset ?? null));
    let gpu: Awaited<ReturnType<typeof openGpu>>;
    try {
      gpu = await openGpu(values);
    } catch (e) {
      lock.release();
      throw e;
    }
    const stop = { requested: false };
    let view: ReturnType<typeof createSweepView> | undefined;
    // SIGTERM (kill, a Slurm time limit) is handled as Ctrl-C: finish the step, checkpoint, exit.
    const onSigint = (sig: NodeJS.Signals) => {
      if (stop.requested) process.exit(sig === 'SIGTERM' ? 143 : 130);
      stop.requested = true;
      const msg = `${sig === 'SIGTERM' ? 'SIGTERM: ' : ''}stopping after this step (a checkpoint is written); Ctrl-C again quits at once`;
      if (view) view.message(msg);
      else process.stderr.write(`\n${msg}\n`);
    };
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    try {
      // Every trial compiles (and fits the device) before any of them trains.
      const limits = limitsOf(gpu);
      const compiled = new Map<string, CompiledTrial>();
      const lowering = values.portable ? {} : loweringFor(gpu);
      for (const t of trials) compiled.set(t.id, compileOrExplain(load, t, limits, lowering));
      const data = await prepareSweepData(trials, (msg) => process.stderr.write(`${msg}\n`));
      view = createSweepView({ tty: wantsLiveView(process.stdout), stdout: process.stdout, stderr: process.stderr, ...(collapseShare !== undefined ? { collapseShare } : {}) });
      const r = await runSweep({ file, load, trials, compiled, gpu, out: values.out!, resume: Boolean(values.resume), force: Boolean(values.force), listener: view.listener, stop, data, parallel, lock, log: (m) => view?.message(m), saveInit: Boolean(values['save-init']), profile: Boolean(values.profile) });
      await view.done();
      view = undefined;
      for (const p of r.profiles ?? []) {
        if (p.profile) console.log(formatTrialProfile(`trial ${p.id} (${p.name})`, p.profile));
        else console.error(`--profile: error: trial ${p.id} (${p.name}) could not be profiled: ${p.error}. The trial itself is done and its records are kept`);
      }
      console.log(`${r.done} done, ${r.failed} failed, ${r.stopped} stopped, ${r.skipped} skipped; report: ${r.reportPath ?? 'not written'}`);
      if (r.reportError) console.error(`error: the report could not be written: ${r.reportError}`);
      return r.failed > 0 || r.stopped > 0 || r.reportError || r.profiles?.some((p) => p.error) ? 1 : 0;
    } finally {
      await view?.done();
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
      lock.release();
      gpu.destroy();
    }
  },
};

/** `moec run --queue`: compile every trial here (errors with their place in the file), then enqueue and follow. */
async function runQueued(file: string, load: ReturnType<typeof loadPipeline>, trials: Trial[], url: string, values: { out?: string; portable?: boolean; steps?: string; attempts?: string }): Promise<number> {
  const target = parseRedisUrl(url);
  scrubArgv(url, target);
  const attempts = values.attempts === undefined ? 3 : Number(values.attempts);
  if (!Number.isInteger(attempts) || attempts < 1) throw new UserError(`--attempts '${values.attempts}' is not a positive whole number`, { where: '--attempts' });
  // No device here: the plan is checked for what the compiler alone can tell; each worker checks its own limits.
  for (const t of trials) compileOrExplain(load, t, { maxBufferSize: Number.MAX_SAFE_INTEGER, maxStorageBufferBindingSize: Number.MAX_SAFE_INTEGER }, {});
  const detach = { requested: false };
  const view = createSweepView({ tty: wantsLiveView(process.stdout), stdout: process.stdout, stderr: process.stderr });
  const onSigint = () => {
    if (detach.requested) process.exit(130);
    detach.requested = true;
    view.message('detaching: the sweep goes on on the workers; the same command again re-attaches');
  };
  process.on('SIGINT', onSigint);
  try {
    const r = await runQueueSweep({
      file, load, trials, out: values.out ?? 'runs', target, listener: view.listener, message: (m) => view.message(m), detach,
      portable: Boolean(values.portable), steps: values.steps === undefined ? null : Number(values.steps), attempts, backoffMs: 5000,
    });
    await view.done();
    if (r.detached) {
      console.log(`detached from ${r.dir}: ${r.done} done, ${r.failed} failed so far; the workers go on`);
      return 0;
    }
    console.log(`${r.done} done, ${r.failed} failed, ${r.skipped} skipped; report: ${r.reportPath ?? 'not written'}`);
    if (r.reportError) console.error(`error: the report could not be written: ${r.reportError}`);
    return r.failed > 0 || r.reportError ? 1 : 0;
  } finally {
    await view.done();
    process.off('SIGINT', onSigint);
  }
}

/** `--collapse-share S`: a share of a layer's tokens, 0 < S <= 1. */
function collapseShareOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!(v > 0 && v <= 1)) throw new UserError(`--collapse-share '${text}' is not a share of tokens in (0, 1]`, { where: '--collapse-share', hint: 'e.g. --collapse-share 0.5: warn when one expert takes over half of a layer\'s tokens' });
  return v;
}
