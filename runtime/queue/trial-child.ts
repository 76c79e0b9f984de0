// The process a worker trains one trial in (forked per job), so the worker's event loop stays free
// to renew BullMQ's lock. It compiles and validates the job's .moe configuration itself, trains it
// through the one trial runner, and reports over IPC. It ends when its worker does (IPC closes).
import { hostname } from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../../compiler/frontend/index.js';
import { renderDiagnostic } from '../../grammar/diagnostics.js';
import { UserError } from '../../grammar/user-error.js';
import { limitsOf, openGpu } from '../cli/adapter-flag.js';
import { compileOrExplain } from '../cli/commands/compile.js';
import type { Gpu } from '../gpu/device.js';
import { loweringFor } from '../gpu/lowering.js';
import { prepareSweepData } from '../run/sweep-data.js';
import { takeTrial } from '../run/sweep-dir.js';
import { recordTrialFailure, trainOneTrial } from '../run/trial-runner.js';
import { LockHeldError, type Lock } from '../store/lock.js';
import { RunStore } from '../store/run-store.js';
import type { SweepEvent } from '../train/events.js';
import type { TrialJobData, TrialJobResult } from './job.js';
import { collectTrialFiles } from './transfer.js';
import { sharedRunDir } from './sweep-key.js';

export interface ChildTask {
  data: TrialJobData;
  adapter?: string;
  /** The worker's own run directory root, for trials whose coordinator's directory is not visible here. */
  out: string;
  /** Send results through the queue even when the coordinator's directory is visible. */
  transfer: boolean;
  transferLimit: number;
}

export type ToChild = { kind: 'train'; task: ChildTask } | { kind: 'stop' };
export type FromChild =
  | { kind: 'placed'; adapter: string; shared: boolean }
  | { kind: 'event'; event: SweepEvent }
  | { kind: 'result'; result: TrialJobResult }
  /** Not to be retried: the configuration, the data or the device's limits refuse the trial. */
  | { kind: 'user-error'; message: string }
  /** Another process trains the trial now: the job goes back to the queue. */
  | { kind: 'busy'; message: string };

const send = (m: FromChild) => new Promise<void>((resolve) => process.send!(m, () => resolve()));
const stop = { requested: false };

async function train(task: ChildTask): Promise<void> {
  const { data } = task;
  const sources = new Map(Object.entries(data.pipeline.sources));
  const load = loadPipeline(data.pipeline.file, {
    ...(data.pipeline.preset ? { preset: data.pipeline.preset } : {}),
    readFile: (f: string) => {
      const text = sources.get(f);
      if (text === undefined) throw Object.assign(new Error(`not in the job: ${f}`), { code: 'ENOENT' });
      return text;
    },
  });
  if (!load.ok) {
    const text = load.diagnostics.map((d) => renderDiagnostic(d, (f) => load.sources.get(f), false)).join('\n');
    throw new UserError(`the job's configuration does not compile here:\n${text}`, { preformatted: true });
  }
  const t = load.trials.find((x) => x.id === data.trial.id);
  if (!t) throw new UserError(`the job's configuration has no trial ${data.trial.id} (${data.trial.name}); it has ${load.trials.map((x) => x.id).join(', ')}`, { hint: 'the coordinator and this worker disagree on the trial; run the same moec version on both' });
  if (data.pipeline.steps !== null) {
    t.config.train.steps = data.pipeline.steps;
    t.config.train.warmup = Math.min(t.config.train.warmup, Math.max(0, data.pipeline.steps - 1));
  }
  let gpu: Gpu | undefined;
  try {
    gpu = await openGpu({ adapter: task.adapter });
    const adapter = gpu.describe();
    const compiled = compileOrExplain(load, t, limitsOf(gpu), data.portable ? {} : loweringFor(gpu));
    const sharedDir = task.transfer ? null : sharedRunDir(data.sweep.dir, data.sweep.token);
    const store = sharedDir
      ? RunStore.open(sharedDir)
      : localStore(path.join(task.out, data.sweep.key), data, t.name);
    await send({ kind: 'placed', adapter, shared: Boolean(sharedDir) });
    const ts = store.trial(t.id);
    let lock: Lock;
    try {
      lock = takeTrial(store, t.id);
    } catch (e) {
      if (!(e instanceof LockHeldError)) throw e;
      await send({ kind: 'busy', message: e.format() });
      return;
    }
    try {
      const place = { host: hostname(), adapter };
      const finish = async (status: TrialJobResult['status'], wallSeconds: number) => {
        const carried = sharedDir ? { files: [], notTransferred: [] } : collectTrialFiles(ts, task.transferLimit, place.host);
        await send({ kind: 'result', result: { status, wallSeconds, at: place, shared: Boolean(sharedDir), ...carried } });
      };
      const before = ts.readStatus();
      // Delivered again after it finished (its completion was lost with a Redis outage): nothing to train.
      if (before?.state === 'done' && before.step >= t.config.train.steps) return await finish('done', before.wall_s);
      const sweepData = await prepareSweepData([t], (msg) => process.stderr.write(`${msg}\n`));
      const started = Date.now();
      try {
        const r = await trainOneTrial({ gpu, store, data: sweepData, listener: (event) => void send({ kind: 'event', event }), adapter, stop }, t, compiled);
        await finish(r.status, r.wallSeconds);
      } catch (e) {
        if (e instanceof UserError) recordTrialFailure(ts, t, started, e.message, adapter);
        throw e;
      }
    } finally {
      lock.release();
    }
  } finally {
    gpu?.destroy();
  }
}

/** The worker's own run directory for a sweep (no shared filesystem): created on first use. */
function localStore(dir: string, data: TrialJobData, name: string): RunStore {
  const trial = { id: data.trial.id, name };
  if (!RunStore.exists(dir)) {
    return RunStore.create(dir, { sweep: data.sweep.name, file: data.pipeline.file, preset: data.pipeline.preset, adapter: 'queue worker', trials: [trial] });
  }
  const store = RunStore.open(dir);
  store.syncTrials([trial]);
  return store;
}

process.on('disconnect', () => process.exit(1));
process.on('message', (m: ToChild) => {
  if (m.kind === 'stop') {
    stop.requested = true;
    return;
  }
  train(m.task).then(
    () => process.exit(0),
    async (e: unknown) => {
      if (e instanceof UserError) {
        await send({ kind: 'user-error', message: e.format() });
        process.exit(0);
      }
      // Anything else is a crash of this process: the worker retries the trial with backoff.
      process.stderr.write(`moec worker: trial ${m.task.data.trial.id}: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
});
