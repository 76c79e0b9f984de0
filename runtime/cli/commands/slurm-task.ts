import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { renderDiagnostic } from '../../../grammar/diagnostics.js';
import { UserError } from '../../../grammar/user-error.js';
import { loweringFor } from '../../gpu/lowering.js';
import { prepareSweepData, runSweep, sweepName } from '../../run/sweep.js';
import { EXIT_STOPPED } from '../../slurm/script.js';
import { overrideSteps, readTrialList } from '../../slurm/trial-list.js';
import { Attempt, slurmPlaceFromEnv } from '../../status/attempts.js';
import { RunStore } from '../../store/run-store.js';
import { createSweepView } from '../../ui/sweep-view.js';
import { adapterOption, limitsOf, openGpu } from '../adapter-flag.js';
import type { Command } from '../command.js';
import { compileOrExplain } from './compile.js';

export const slurmTaskCommand: Command = {
  name: 'slurm-task',
  summary: "train one trial of a Slurm job array (what the job script of 'moec run --slurm' runs)",
  usage: `usage: moec slurm-task LIST [INDEX] [--adapter NAME]

Trains trial INDEX (default: $SLURM_ARRAY_TASK_ID) of the trial list LIST, which 'moec run FILE
--slurm' wrote under runs/<sweep>/slurm/, into the run store beside it, resuming from the trial's
latest checkpoint. A finished trial is skipped. SIGTERM or SIGUSR1 (scancel, scontrol requeue,
the time-limit signal) stops after the current step with a checkpoint; the exit status is then
${EXIT_STOPPED}, and the job script requeues the task when the signal came before the time limit.
  --adapter NAME   the GPU to use (default: the one named at submission, else the best)`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...adapterOption } });
    if (positionals.length < 1 || positionals.length > 2) { console.error(this.usage); return 1; }
    const listFile = path.resolve(positionals[0]!);
    const list = readTrialList(listFile);
    const rawIndex = positionals[1] ?? (process.env.SLURM_ARRAY_TASK_ID || undefined);
    if (rawIndex === undefined) throw new UserError('no trial index: give INDEX or run inside a Slurm array task (SLURM_ARRAY_TASK_ID)', { where: 'INDEX' });
    const index = Number(rawIndex);
    if (!Number.isInteger(index) || index < 0 || index >= list.trials.length) {
      throw new UserError(`trial index '${rawIndex}' is outside the list's 0..${list.trials.length - 1}`, { where: listFile, hint: 'the array of the job script must match the list it was written with' });
    }
    const entry = list.trials[index]!;
    const log = (msg: string) => process.stdout.write(`moec: ${msg}\n`);

    // Signals only ask the trainer to stop: it finishes the step and writes a checkpoint first.
    const stop = { requested: false };
    let signal: string | undefined;
    const onSignal = (name: NodeJS.Signals) => {
      if (!stop.requested) log(`${name}: stopping ${entry.id} after this step, with a checkpoint`);
      stop.requested = true;
      signal ??= name;
    };
    const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGUSR1', 'SIGINT'];
    for (const s of signals) process.on(s, onSignal);

    // The run store was created at submission; without it there is nowhere to train into.
    if (!RunStore.open(list.runDir).index.trials.some((t) => t.id === entry.id)) {
      throw new UserError(`trial ${entry.id} is not in the run's index.json`, { where: list.runDir, hint: 'the run directory was replaced after submission; submit again with moec run FILE --slurm' });
    }
    const trialDir = path.join(list.runDir, entry.id);
    const attempt = new Attempt(trialDir, 'slurm-task');
    attempt.start(slurmPlaceFromEnv());
    log(`trial ${entry.id} (${entry.name}), task ${index} of ${listFile}`);
    // A failure before training starts (the file edited since submission, no GPU, a plan that does
    // not fit) is recorded with the trial so that `moec status` says why, and is not retried.
    const fail = (message: string) => {
      const ts = RunStore.open(list.runDir).trial(entry.id);
      const now = new Date().toISOString();
      ts.writeStatus({ state: 'failed', step: ts.readStatus()?.step ?? 0, steps: ts.readStatus()?.steps ?? 0, error: message, started: now, finished: now, wall_s: 0, tokens_per_s: 0, adapter: '' });
      attempt.end('failed', { error: message });
    };
    let gpu: Awaited<ReturnType<typeof openGpu>> | undefined;
    try {
      const load = loadPipeline(list.file, list.preset ? { preset: list.preset } : {});
      for (const d of load.diagnostics) console.error(renderDiagnostic(d, (f) => load.sources.get(f), false));
      if (!load.ok) throw new UserError(`${list.file} no longer loads (see above); it must stay as it was submitted while the array runs`, { where: list.file });
      const trial = load.trials.find((t) => t.id === entry.id);
      if (!trial) throw new UserError(`trial ${entry.id} (${entry.name}) is no longer a trial of ${list.file}: the file was changed after submission`, { where: list.file, hint: "submit the changed sweep again with 'moec run FILE --slurm --resume'" });
      if (list.steps !== null) overrideSteps([trial], list.steps);
      if (path.join(list.out, sweepName(list.file, list.preset)) !== list.runDir) throw new Error(`trial list ${listFile}: run directory ${list.runDir} is not under ${list.out}`);
      const adapter = values.adapter ?? list.adapter ?? undefined;
      gpu = await openGpu(adapter ? { adapter } : {});
      const compiled = compileOrExplain(load, trial, limitsOf(gpu), list.portable ? {} : loweringFor(gpu));
      const data = await prepareSweepData([trial], log);
      const view = createSweepView({ tty: false, stdout: process.stdout, stderr: process.stderr });
      const r = await runSweep({ file: list.file, load, trials: [trial], compiled: new Map([[trial.id, compiled]]), gpu, out: list.out, resume: true, force: false, listener: view.listener, stop, data, report: false, lock: null });
      await view.done();
      const step = RunStore.open(list.runDir).trial(entry.id).readStatus()?.step;
      const extra = { ...(step !== undefined ? { step } : {}), ...(signal ? { signal } : {}) };
      if (r.done || r.skipped) {
        attempt.end(r.done ? 'done' : 'skipped', extra);
        // Skipped: finished already, or another live process holds its trial lock (then it is left to that one).
        const state = RunStore.open(list.runDir).trial(entry.id).readStatus()?.state;
        log(`trial ${entry.id} ${r.done ? 'done' : state === 'done' ? 'was already done' : 'is being trained by another process (its trial lock is held); left to it'}`);
        return 0;
      }
      if (r.failed) {
        attempt.end('failed', { ...extra, error: RunStore.open(list.runDir).trial(entry.id).readStatus()?.error ?? 'failed' });
        return 1;
      }
      attempt.end('stopped', extra);
      log(`trial ${entry.id} stopped at step ${step ?? 0} with a checkpoint; a requeued task resumes it`);
      return EXIT_STOPPED;
    } catch (e) {
      fail(e instanceof UserError ? e.format() : e instanceof Error ? e.message : String(e));
      throw e;
    } finally {
      gpu?.destroy();
      for (const s of signals) process.off(s, onSignal);
    }
  },
};
