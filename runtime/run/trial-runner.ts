// The one way a trial of a loaded pipeline is trained into a run store: local sweeps, queue workers
// and Slurm tasks all come through here, so a trial trains the same way wherever it runs.
import path from 'node:path';
import type { DataSet, Trial } from '../../compiler/frontend/index.js';
import type { CompiledTrial } from '../../compiler/lower/compile.js';
import { summarize } from '../../compiler/lower/summary.js';
import { checkSameTokenizer } from '../data/index.js';
import type { PlanExecutor } from '../executor/executor.js';
import type { CompileProgress } from '../executor/pipelines.js';
import type { Gpu } from '../gpu/device.js';
import type { RunStore, TrialStore } from '../store/run-store.js';
import type { SweepListener, TrialInfo } from '../train/events.js';
import { GpuModel, type PlanModel } from '../train/model.js';
import { PatchModel } from '../train/patch-model.js';
import { trainPatchTrial } from '../train/patch-trainer.js';
import { trainTrial, type TrainOutcome } from '../train/trainer.js';
import type { SweepData } from './sweep-data.js';
import type { DispatchProfile, TrialProfile } from './dispatch-profile.js';
import { writeJsonAtomic } from '../store/atomic.js';

export interface TrialRunContext {
  gpu: Gpu;
  store: RunStore;
  data: SweepData;
  listener: SweepListener;
  /** The adapter's description, recorded with the trial's status and checkpoints. */
  adapter: string;
  stop: { requested: boolean };
  /** Write the trial's initial weights (initial.safetensors). */
  saveInit?: boolean;
  /** The .moe file, named in data errors. */
  file?: string;
  /** Time the training step's dispatches once a trial is done (`moec run --profile`). */
  profile?: {
    measure: (ex: PlanExecutor, program: string) => Promise<DispatchProfile>;
    /** The profile, or why it could not be taken: the trial stays done either way. */
    record: (t: Trial, p: TrialProfile | { error: string }) => void;
  };
}

/** What the live view shows of a trial before it starts. */
export function trialInfo(t: Trial): TrialInfo {
  const moe = t.config.model.moe;
  const classification = t.config.data[t.config.train.data]?.source.kind === 'clusters';
  return {
    id: t.id, name: t.name, steps: t.config.train.steps, params: t.params_count, moeLayers: moe ? (classification ? 1 : moe.layers.length) : 0, experts: moe ? moe.experts : 0,
    task: classification ? 'classification' : 'language-model',
  };
}

/** The data a trial trains and evaluates on, prepared by `get` (text or the cluster task). */
async function trialData<D>(cfg: Trial['config'], get: (ds: DataSet) => Promise<D>, file?: string) {
  const evals: { name: string; data: D; split: 'train' | 'valid' }[] = [];
  for (const ref of cfg.evaluate.perplexity) evals.push({ name: `${ref.data}.${ref.split}`, data: await get(cfg.data[ref.data]!), split: ref.split });
  const expertData = new Map<string, D>();
  for (const ref of cfg.evaluate.experts) expertData.set(ref.data, await get(cfg.data[ref.data]!));
  const train = await get(cfg.data[cfg.train.data]!);
  // A data set evaluated under another tokenizer than the training data's is refused, not scored.
  const tok = cfg.data[cfg.train.data]!;
  for (const d of [...evals.map((e) => e.data), ...expertData.values()]) {
    const text = d as { kind?: string; name: string; tokenizer: 'gpt2' | 'bytes'; vocab: number };
    if (text.kind === 'text') checkSameTokenizer(text, { tokenizer: tok.tokenizer, vocab: cfg.model.vocab, what: `the model (trained on '${tok.name}')` }, file);
  }
  return { data: train, evals, expertData };
}

/**
 * Trains (or resumes, from its latest checkpoint) one trial into `ctx.store`: records its config and
 * plan, trains to its last step or until `ctx.stop`, and mirrors the outcome into the sweep index.
 * Errors propagate: the caller decides whether a failure ends the sweep, is recorded, or is retried.
 */
export async function trainOneTrial(ctx: TrialRunContext, t: Trial, compiled: CompiledTrial): Promise<TrainOutcome> {
  const { store } = ctx;
  const ts = store.trial(t.id);
  ts.writeConfig({ id: t.id, name: t.name, params: t.params, seed: t.seed, baseline: t.baseline, matches: t.matches ?? null, params_count: t.params_count, config: t.config });
  ts.writePlan(summarize(compiled));
  let model: PlanModel | undefined;
  try {
    // Kernel compilation is its own phase, shown with its progress and timed apart from training.
    const started = performance.now();
    const compileSeconds = () => (performance.now() - started) / 1000;
    const onProgress = (p: CompileProgress) => ctx.listener({ type: 'compile', id: t.id, ...p, seconds: compileSeconds() });
    const common = { trial: t, store: ts, listener: ctx.listener, adapter: ctx.adapter, stop: ctx.stop, saveInit: Boolean(ctx.saveInit) };
    let r: TrainOutcome;
    if (compiled.patch) {
      const d = await trialData(t.config, (ds) => ctx.data.clusters(ds), ctx.file);
      const m = await PatchModel.create(ctx.gpu, compiled, `trial ${t.id}`, { onProgress });
      model = m;
      store.setTrialStatus(t.id, 'running');
      r = await trainPatchTrial({ model: m, ...d, ...common, compileSeconds: compileSeconds() });
    } else {
      const d = await trialData(t.config, (ds) => ctx.data.get(ds), ctx.file);
      const m = await GpuModel.create(ctx.gpu, compiled, `trial ${t.id}`, { onProgress });
      model = m;
      store.setTrialStatus(t.id, 'running');
      r = await trainTrial({ model: m, ...d, ...common, compileSeconds: compileSeconds() });
    }
    store.setTrialStatus(t.id, r.status);
    if (ctx.profile && r.status === 'done') {
      // After the last checkpoint: the extra steps it runs change nothing the trial saved.
      try {
        // The training step first (what the summary leads with), then every other program of the plan.
        const names = ['train_step', ...Object.keys(compiled.plan.programs).filter((n) => n !== 'train_step')];
        const programs: Record<string, DispatchProfile> = {};
        for (const n of names) programs[n] = await ctx.profile.measure(model!.ex, n);
        const p: TrialProfile = { ...programs['train_step']!, programs };
        writeJsonAtomic(path.join(ts.dir, 'profile.json'), p);
        ctx.profile.record(t, p);
      } catch (e) {
        ctx.profile.record(t, { error: e instanceof Error ? e.message : String(e) });
      }
    }
    return r;
  } finally {
    model?.destroy();
  }
}

/** Records a trial that failed: its status.json with the message, and the sweep index. */
export function recordTrialFailure(ts: TrialStore, t: Trial, started: number, message: string, adapter: string): number {
  const wall = (Date.now() - started) / 1000;
  ts.writeStatus({ state: 'failed', step: 0, steps: t.config.train.steps, error: message, started: new Date(started).toISOString(), finished: new Date().toISOString(), wall_s: wall, tokens_per_s: 0, adapter });
  return wall;
}
