import type { Trial } from '../../compiler/frontend/types.js';
import type { TrialStore } from '../store/run-store.js';
import { checkpointTensors, restoreTensors } from './checkpoint.js';
import type { SweepListener } from './events.js';
import { moeLayers } from './experts.js';
import { readTrainReadout } from './readout.js';
import type { PlanModel } from './model.js';
import { lrAt } from './schedule.js';
import { existsSync } from 'node:fs';
import { initParams, splitParams } from './init.js';
import { loweringNames } from '../../compiler/lower/kernels.js';
import { splitMessage } from '../../compiler/lower/fit.js';

/** Wall time and throughput are over every segment of the trial, resumes included. */
export type TrainOutcome = { status: 'done' | 'stopped'; step: number; wallSeconds: number; tokensPerSec: number };

/** What every trainer passes in: the model, the trial, where its records go, and the stop flag. */
export interface TrialRun {
  trial: Trial;
  store: TrialStore;
  listener: SweepListener;
  adapter: string;
  /** Set by Ctrl-C: finish the step, checkpoint, return 'stopped'. */
  stop: { requested: boolean };
  /** Also write the initial weights to initial.safetensors (`moec run --save-init`). */
  saveInit?: boolean;
  /** Seconds this process spent compiling the trial's kernels (recorded, kept out of wall time). */
  compileSeconds?: number;
  /** Read the training loss back every this many steps (each read is a GPU sync). */
  logEvery?: number;
}

/** The task-specific parts of training: the batches, one step, and the evaluation. */
export interface TaskHooks {
  model: PlanModel;
  /** Tokens (or samples) per optimiser step, for the throughput figure. */
  unitsPerStep: number;
  batcher: { state(): unknown; restore(state: never): void };
  /** Queues one optimiser step (1-based `step`) on the GPU; reads nothing back. */
  step(step: number, lr: number): void;
  /** Evaluates, writes the eval metric and expert records, and emits the eval event. */
  evaluate(step: number, final: boolean, lastLoad: number[][] | undefined): Promise<void>;
}

/** What differs between the kernels a checkpoint was trained with and those resuming it, in words. */
export function kernelChange(was: { adapter?: string; lowering?: string }, now: { adapter: string; lowering: string }): string | undefined {
  // Checkpoints from before these were recorded say nothing; nothing is claimed about them.
  const diffs: string[] = [];
  if (was.lowering !== undefined && was.lowering !== now.lowering) diffs.push(`lowering ${was.lowering} -> ${now.lowering}`);
  if (was.adapter !== undefined && was.adapter !== now.adapter) diffs.push(`adapter ${was.adapter} -> ${now.adapter}`);
  if (!diffs.length) return undefined;
  return `resumed with other kernels (${diffs.join('; ')}): losses from here on will not equal an uninterrupted run's bit for bit`;
}

/**
 * The training loop every task shares: resumes from the latest checkpoint (else initialises from
 * the trial's seed), runs the steps on its schedule, reads the loss (and MoE statistics) back only
 * every `logEvery` steps so the GPU runs ahead of the host, evaluates every `evaluate.every`
 * steps with a checkpoint after each, and once more at the end.
 */
export async function runTrainingLoop(o: TrialRun, h: TaskHooks): Promise<TrainOutcome> {
  const { trial, store, listener } = o;
  const { model } = h;
  const cfg = trial.config;
  const steps = cfg.train.steps;
  const seed = trial.seed;
  const started = Date.now();
  let step = 0;
  // Where the steps run: a resume on another adapter or lowering runs other kernels, so its losses
  // cannot equal an uninterrupted run's bit for bit; that is said and recorded, not refused.
  const kernels = { adapter: o.adapter, lowering: loweringNames(model.compiled.lowering).join(',') || 'portable' };
  // A resumed trial's wall time and throughput continue its earlier segments' (status.json).
  const before = store.readStatus();
  const ck = store.resume();
  const prior = ck && before ? { wall: before.wall_s, train: before.train_s ?? 0, units: (before.train_s ?? 0) * before.tokens_per_s } : { wall: 0, train: 0, units: 0 };
  let changed: string | undefined;
  if (ck) {
    restoreTensors(model, ck.tensors, ck.path);
    const st = ck.state as { step: number; batcher: never; adapter?: string; lowering?: string };
    h.batcher.restore(st.batcher);
    step = st.step;
    changed = kernelChange(st, kernels);
    if (changed) store.appendResume({ step, ...kernels, note: changed });
    if (ck.fellBack) changed = changed ? `${ck.fellBack}; ${changed}` : ck.fellBack;
  } else {
    model.initParams(seed);
  }
  // The initial weights are a function of (graph, seed) alone, so they are recomputed on the host
  // when a resumed trial lacks them: nothing is read from the GPU.
  if (o.saveInit && !existsSync(store.initialPath)) {
    const { graph, layout } = model.compiled;
    const init = splitParams(graph, layout, initParams(graph, layout, seed));
    store.saveInitial(new Map([...init].map(([name, data]) => [name, { shape: graph.get(name).shape, data }])), { step: 0, seed, initial: true });
  }
  // A micro-batch the compiler chose to fit the device is said at every start (compiler/lower/fit.ts).
  const split = model.compiled.split ? splitMessage(model.compiled.split) : undefined;
  const note = [split, changed].filter(Boolean).join('; ');
  listener({ type: 'trial-start', id: trial.id, ...(ck ? { resumedFrom: step } : {}), ...(note ? { note } : {}) });
  const logEvery = o.logEvery ?? Math.max(1, Math.min(10, Math.floor(cfg.evaluate.every / 2)));
  let lastLog = { step, time: performance.now() };
  let perSec = 0;
  // Training time and units of this segment, between read-backs (evaluations excluded).
  let trainS = 0;
  let units = 0;
  const wall = () => prior.wall + (Date.now() - started) / 1000;
  const rate = () => (prior.train + trainS > 0 ? (prior.units + units) / (prior.train + trainS) : 0);
  const status = (state: 'running' | 'done' | 'stopped') =>
    store.writeStatus({
      state, step, steps, started: before && ck ? before.started : new Date(started).toISOString(), ...(state === 'running' ? {} : { finished: new Date().toISOString() }),
      wall_s: wall(), tokens_per_s: rate(), train_s: prior.train + trainS, ...(o.compileSeconds !== undefined ? { compile_s: o.compileSeconds } : {}), adapter: o.adapter,
    });
  const save = async () => {
    const ref = store.saveCheckpoint(step, await checkpointTensors(model), { step, batcher: h.batcher.state(), seed, ...kernels } as Record<string, unknown>);
    listener({ type: 'checkpoint', id: trial.id, step, path: ref.path });
  };
  const layers = moeLayers(model);
  let lastLoad: number[][] | undefined;
  status('running');
  while (step < steps && !o.stop.requested) {
    const lr = lrAt(step, cfg.train);
    step++;
    h.step(step, lr);
    const evalDue = step % cfg.evaluate.every === 0 || step === steps;
    if (step % logEvery === 0 || evalDue || step === 1) {
      const { losses, last, moe: diag } = await readTrainReadout(model);
      const loss = losses.lm;
      const now = performance.now();
      perSec = ((step - lastLog.step) * h.unitsPerStep) / ((now - lastLog.time) / 1000);
      trainS += (now - lastLog.time) / 1000;
      units += (step - lastLog.step) * h.unitsPerStep;
      lastLog = { step, time: now };
      if (!Number.isFinite(losses.total)) throw new Error(`training loss is ${losses.total} at step ${step}: the run diverged (lower train.lr${cfg.train.optimizer === 'ngd' ? ': ngd moves each expert by lr per step, whatever its gradient' : ', or set train.clip'})`);
      const moe: Record<string, unknown> = {};
      if (layers.length) {
        lastLoad = last.load;
        Object.assign(moe, { moe_load: last.load, moe_balance: last.balance, moe_z: last.z, moe_dropped: last.dropped, moe_entropy: last.entropy });
      }
      if (diag) moe.moe = diag.map(({ counts: _counts, ...d }) => d);
      // loss is the language-model loss (ppl from it); total is what the optimiser minimised (issue 18).
      const parts = losses.parts ? { ppl: Math.exp(loss), total: losses.total, balance_loss: losses.balance, z_loss: losses.z } : {};
      store.appendMetric({ kind: 'train', step, loss, ...parts, lr, tokens_per_s: perSec, time_s: (Date.now() - started) / 1000, ...moe });
      listener({
        type: 'step', id: trial.id, step, loss, lr, tokensPerSec: perSec, elapsed: (Date.now() - started) / 1000,
        ...(losses.parts ? { total: losses.total, aux: { balance: losses.balance, z: losses.z } } : {}),
        ...(moe.moe_balance !== undefined ? { moe: { balance: moe.moe_balance as number[], z: moe.moe_z as number[], dropped: moe.moe_dropped as number[] } } : {}),
        ...(diag ? { load: diag.map((d) => ({ layer: d.layer, overload: d.overload, dead: d.dead, maxShare: d.maxShare, fairShare: d.fairShare })) } : {}),
      });
    }
    if (evalDue && step < steps) {
      await h.evaluate(step, false, lastLoad);
      await save();
      status('running');
      lastLog = { step, time: performance.now() }; // throughput measures training only
    }
  }
  if (step >= steps) await h.evaluate(step, true, lastLoad);
  await save();
  const outcome = step >= steps ? 'done' : 'stopped';
  status(outcome);
  return { status: outcome, step, wallSeconds: wall(), tokensPerSec: rate() };
}
