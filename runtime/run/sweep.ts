import path from 'node:path';
import type { DataSet, LoadResult, Trial } from '../../compiler/frontend/index.js';
import type { CompiledTrial } from '../../compiler/lower/compile.js';
import { summarize } from '../../compiler/lower/summary.js';
import { UserError } from '../../grammar/user-error.js';
import { prepareDataset, type PreparedClusters, type PreparedData, type PreparedText } from '../data/index.js';
import type { CompileProgress } from '../executor/pipelines.js';
import type { Gpu } from '../gpu/device.js';
import { writeReport } from '../report/report.js';
import { RunStore, type TrialStore } from '../store/run-store.js';
import type { SweepListener, TrialInfo } from '../train/events.js';
import { GpuModel, type PlanModel } from '../train/model.js';
import { PatchModel } from '../train/patch-model.js';
import { trainPatchTrial } from '../train/patch-trainer.js';
import { trainTrial, type TrainOutcome } from '../train/trainer.js';

export interface SweepOptions {
  file: string;
  load: LoadResult;
  trials: Trial[];
  compiled: Map<string, CompiledTrial>;
  gpu: Gpu;
  out: string;
  resume: boolean;
  force: boolean;
  listener: SweepListener;
  stop: { requested: boolean };
  /** Prepared data sets (see prepareSweepData): prepared before the live view starts drawing. */
  data: SweepData;
  /** Trials trained at once (their steps interleave on the one GPU queue); default 1. */
  parallel?: number;
}

/** Prepares (fetching and tokenising on first use) every data set the trials train or evaluate on. */
export async function prepareSweepData(trials: Trial[], log: (msg: string) => void): Promise<SweepData> {
  const data = new SweepData(log);
  for (const t of trials) {
    const c = t.config;
    await data.any(c.data[c.train.data]!);
    for (const ref of [...c.evaluate.perplexity, ...c.evaluate.experts]) await data.any(c.data[ref.data]!);
  }
  return data;
}

export interface SweepResult {
  done: number;
  failed: number;
  stopped: number;
  skipped: number;
  reportPath: string | null;
  /** Why the report could not be written (the trials' records are intact). */
  reportError?: string;
}

/** The sweep's directory name: the .moe file's base name, plus the preset when one is applied. */
export function sweepName(file: string, preset: string | null): string {
  const base = path.basename(file).replace(/\.moe$/, '');
  return preset ? `${base}-${preset}` : base;
}

function trialInfo(t: Trial): TrialInfo {
  const moe = t.config.model.moe;
  const classification = t.config.data[t.config.train.data]?.source.kind === 'clusters';
  return {
    id: t.id, name: t.name, steps: t.config.train.steps, params: t.params_count, moeLayers: moe ? (classification ? 1 : moe.layers.length) : 0, experts: moe ? moe.experts : 0,
    task: classification ? 'classification' : 'language-model',
  };
}

/** Prepares each data set once per sweep (the cache makes later sweeps fast). */
export class SweepData {
  private readonly ready = new Map<string, Promise<PreparedData>>();
  constructor(private readonly log: (msg: string) => void) {}

  any(ds: DataSet): Promise<PreparedData> {
    const key = JSON.stringify(ds);
    let p = this.ready.get(key);
    if (!p) {
      p = prepareDataset(ds, { log: this.log });
      this.ready.set(key, p);
    }
    return p;
  }

  /** A text data set; the cluster task's data is refused where a language model needs text. */
  async get(ds: DataSet): Promise<PreparedText> {
    const d = await this.any(ds);
    if (d.kind !== 'text') throw new UserError(`data '${ds.name}' is the synthetic cluster task, which a language model cannot train or be evaluated on`, { hint: 'use a text source for a GPT-style model' });
    return d;
  }

  async clusters(ds: DataSet): Promise<PreparedClusters> {
    const d = await this.any(ds);
    if (d.kind !== 'clusters') throw new UserError(`data '${ds.name}' is text, which the patch model of the cluster task cannot train or be evaluated on`, { hint: 'use source clusters' });
    return d;
  }
}

/**
 * Runs every trial of a sweep in order on one GPU: a trial that fails is marked failed with its
 * error and the sweep goes on; finished trials are skipped on --resume; Ctrl-C stops after the
 * current step with a checkpoint. Writes the report at the end.
 */
export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const preset = o.load.pipeline?.preset ?? null;
  const name = sweepName(o.file, preset);
  const dir = path.join(o.out, name);
  const adapter = o.gpu.describe();
  const info = { sweep: name, file: path.resolve(o.file), preset, adapter, trials: o.trials.map((t) => ({ id: t.id, name: t.name })) };
  const store = o.resume && RunStore.exists(dir) ? RunStore.open(dir) : RunStore.create(dir, info, { force: o.force });
  if (o.resume) store.syncTrials(info.trials, adapter);
  const data = o.data;
  const result: SweepResult = { done: 0, failed: 0, stopped: 0, skipped: 0, reportPath: null };
  o.listener({ type: 'sweep-start', sweep: name, adapter, out: dir, trials: o.trials.map(trialInfo) });
  // The data a trial trains and evaluates on, prepared by `get` (text or the cluster task).
  const trialData = async <D>(cfg: Trial['config'], get: (ds: DataSet) => Promise<D>) => {
    const evals: { name: string; data: D; split: 'train' | 'valid' }[] = [];
    for (const ref of cfg.evaluate.perplexity) evals.push({ name: `${ref.data}.${ref.split}`, data: await get(cfg.data[ref.data]!), split: ref.split });
    const expertData = new Map<string, D>();
    for (const ref of cfg.evaluate.experts) expertData.set(ref.data, await get(cfg.data[ref.data]!));
    return { data: await get(cfg.data[cfg.train.data]!), evals, expertData };
  };
  // Kernel compilation is its own phase, shown with its progress and timed apart from training.
  const compileReporter = (id: string) => {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    return { seconds, progress: (p: CompileProgress) => o.listener({ type: 'compile', id, ...p, seconds: seconds() }) };
  };
  const runLanguageModel = async (t: Trial, compiled: CompiledTrial, ts: TrialStore, hold: (m: PlanModel) => void): Promise<TrainOutcome> => {
    const d = await trialData(t.config, (ds) => data.get(ds));
    const c = compileReporter(t.id);
    const model = await GpuModel.create(o.gpu, compiled, `trial ${t.id}`, { onProgress: c.progress });
    hold(model);
    store.setTrialStatus(t.id, 'running');
    return trainTrial({ model, trial: t, ...d, store: ts, listener: o.listener, adapter, stop: o.stop, compileSeconds: c.seconds() });
  };
  const runPatch = async (t: Trial, compiled: CompiledTrial, ts: TrialStore, hold: (m: PlanModel) => void): Promise<TrainOutcome> => {
    const d = await trialData(t.config, (ds) => data.clusters(ds));
    const c = compileReporter(t.id);
    const model = await PatchModel.create(o.gpu, compiled, `trial ${t.id}`, { onProgress: c.progress });
    hold(model);
    store.setTrialStatus(t.id, 'running');
    return trainPatchTrial({ model, trial: t, ...d, store: ts, listener: o.listener, adapter, stop: o.stop, compileSeconds: c.seconds() });
  };
  const runOne = async (t: Trial) => {
    const ts = store.trial(t.id);
    if (ts.readStatus()?.state === 'done') {
      result.skipped++;
      o.listener({ type: 'trial-end', id: t.id, status: 'skipped', wallSeconds: 0 });
      return;
    }
    const started = Date.now();
    let model: PlanModel | undefined;
    try {
      const cfg = t.config;
      const compiled = o.compiled.get(t.id)!;
      ts.writeConfig({ id: t.id, name: t.name, params: t.params, seed: t.seed, baseline: t.baseline, matches: t.matches ?? null, params_count: t.params_count, config: cfg });
      ts.writePlan(summarize(compiled));
      const r = compiled.patch ? await runPatch(t, compiled, ts, (m) => { model = m; }) : await runLanguageModel(t, compiled, ts, (m) => { model = m; });
      store.setTrialStatus(t.id, r.status);
      if (r.status === 'done') result.done++;
      else result.stopped++;
      o.listener({ type: 'trial-end', id: t.id, status: r.status, wallSeconds: r.wallSeconds, tokensPerSec: r.tokensPerSec });
    } catch (e) {
      // A data problem is the user's to fix; anything else is recorded with the trial and the sweep goes on.
      if (e instanceof UserError && !(e.message.startsWith('trial'))) throw e;
      const message = e instanceof Error ? e.message : String(e);
      result.failed++;
      const wall = (Date.now() - started) / 1000;
      ts.writeStatus({ state: 'failed', step: 0, steps: t.config.train.steps, error: message, started: new Date(started).toISOString(), finished: new Date().toISOString(), wall_s: wall, tokens_per_s: 0, adapter });
      store.setTrialStatus(t.id, 'failed');
      o.listener({ type: 'trial-end', id: t.id, status: 'failed', error: message, wallSeconds: wall });
    } finally {
      model?.destroy();
    }
  };
  // A pool of workers over the trial list: each awaits only at its read-backs, which is when the
  // others enqueue their steps, so small models keep the GPU busy while the host waits.
  const queue = [...o.trials];
  const worker = async () => {
    for (let t = queue.shift(); t && !o.stop.requested; t = queue.shift()) await runOne(t);
  };
  await Promise.all(Array.from({ length: Math.max(1, o.parallel ?? 1) }, worker));
  // The trials' records are on disk whatever happens here: a failing report must not fail the run.
  try {
    result.reportPath = (await writeReport(dir)).files.markdown;
  } catch (e) {
    result.reportError = `${(e as Error).message}; the runs are intact: retry with 'moec report ${dir}'`;
  }
  o.listener({ type: 'sweep-end', out: dir });
  return result;
}
