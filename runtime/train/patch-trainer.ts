import type { Trial } from '../../compiler/frontend/types.js';
import { ClusterBatcher, type PreparedClusters } from '../data/index.js';
import type { TrialStore } from '../store/run-store.js';
import { checkpointTensors, restoreTensors } from './checkpoint.js';
import type { SweepListener } from './events.js';
import { moeLayers, readMoeStats } from './experts.js';
import { dispatchEntropy, type PatchModel } from './patch-model.js';
import { lrAt } from './schedule.js';
import type { TrainOutcome } from './trainer.js';

export interface PatchEvalSet {
  /** As written in .moe, e.g. "blobs.valid". */
  name: string;
  data: PreparedClusters;
  split: 'train' | 'valid';
}

export interface PatchTrainOptions {
  model: PatchModel;
  trial: Trial;
  data: PreparedClusters;
  evals: PatchEvalSet[];
  /** `evaluate.experts` lines' data sets, by name. */
  expertData?: Map<string, PreparedClusters>;
  store: TrialStore;
  listener: SweepListener;
  adapter: string;
  stop: { requested: boolean };
  logEvery?: number;
}

/**
 * Trains the patch model of the cluster task: the language-model trainer's loop (resume, periodic
 * evaluation with a checkpoint, metrics streamed to the store and the listener), with the task's
 * own measures: test accuracy, dispatch entropy, and the cluster × expert dispatch table.
 * Periodic evaluations use the first `evaluate.batches` batches; the last one the whole split.
 */
export async function trainPatchTrial(o: PatchTrainOptions): Promise<TrainOutcome> {
  const { model, trial, store, listener } = o;
  const cfg = trial.config;
  const steps = cfg.train.steps;
  const seed = trial.seed;
  const { batch, patches, dim } = model.shape;
  const started = Date.now();
  const batcher = new ClusterBatcher(o.data.train, patches, dim, batch, seed);
  let step = 0;
  const ck = store.resume();
  if (ck) {
    restoreTensors(model, ck.tensors, ck.path);
    const st = ck.state as { step: number; batcher: { position: number } };
    batcher.restore(st.batcher);
    step = st.step;
  } else {
    model.initParams(seed);
  }
  listener({ type: 'trial-start', id: trial.id, ...(ck ? { resumedFrom: step } : {}) });
  const logEvery = o.logEvery ?? Math.max(1, Math.min(10, Math.floor(cfg.evaluate.every / 2)));
  let lastLog = { step, time: performance.now() };
  let samplesPerSec = 0;
  const status = (state: 'running' | 'done' | 'stopped') =>
    store.writeStatus({ state, step, steps, started: new Date(started).toISOString(), ...(state === 'running' ? {} : { finished: new Date().toISOString() }), wall_s: (Date.now() - started) / 1000, tokens_per_s: samplesPerSec, adapter: o.adapter });
  const save = async () => {
    const ref = store.saveCheckpoint(step, await checkpointTensors(model), { step, batcher: batcher.state(), seed });
    listener({ type: 'checkpoint', id: trial.id, step, path: ref.path });
  };
  const layers = moeLayers(model);
  let lastLoad: number[][] | undefined;
  const runEval = async (final: boolean) => {
    const extra: Record<string, number> = {};
    let first: { loss: number; accuracy: number; entropy: number } | undefined;
    const dispatchOf = new Map<string, number[][]>();
    for (const e of o.evals) {
      const r = await model.evaluate(e.split === 'valid' ? e.data.valid : e.data.train, final ? 0 : cfg.evaluate.batches);
      const entropy = dispatchEntropy(r.dispatch);
      first ??= { loss: r.loss, accuracy: r.accuracy, entropy };
      dispatchOf.set(`${e.name}`, r.dispatch);
      Object.assign(extra, { [`${e.name}.loss`]: r.loss, [`${e.name}.acc`]: r.accuracy, [`${e.name}.dispatch_entropy`]: entropy, [`${e.name}.samples`]: r.samples });
    }
    const loss = first?.loss ?? NaN;
    store.appendMetric({ kind: 'eval', step, valid_loss: loss, valid_ppl: Math.exp(loss), valid_acc: first?.accuracy ?? NaN, dispatch_entropy: first?.entropy ?? NaN, final, ...extra });
    for (const ref of cfg.evaluate.experts) {
      const name = `${ref.data}.${ref.split}`;
      let table = dispatchOf.get(name);
      if (!table) {
        const data = o.expertData?.get(ref.data);
        if (!data) continue;
        table = (await model.evaluate(ref.split === 'valid' ? data.valid : data.train, final ? 0 : cfg.evaluate.batches)).dispatch;
      }
      // The cluster is the only label the task has (the front end checks `by cluster`).
      store.appendExperts({ step, data: name, label: ref.label, layers: [{ layer: 0, counts: Object.fromEntries(table.map((row, k) => [String(k), row])) }] });
    }
    listener({ type: 'eval', id: trial.id, step, validLoss: loss, validPpl: Math.exp(loss), ...(first ? { validAcc: first.accuracy } : {}), ...(lastLoad ? { expertLoad: lastLoad } : {}) });
  };
  status('running');
  while (step < steps && !o.stop.requested) {
    const lr = lrAt(step, cfg.train);
    const b = batcher.next();
    step++;
    model.trainStep(step, lr, seed, b);
    const evalDue = step % cfg.evaluate.every === 0 || step === steps;
    if (step % logEvery === 0 || evalDue || step === 1) {
      const loss = await model.trainLoss();
      const now = performance.now();
      samplesPerSec = ((step - lastLog.step) * batch) / ((now - lastLog.time) / 1000);
      lastLog = { step, time: now };
      if (!Number.isFinite(loss)) throw new Error(`training loss is ${loss} at step ${step}: the run diverged (lower train.lr, or set train.clip)`);
      const moe: Record<string, unknown> = {};
      if (layers.length) {
        const st = await readMoeStats(model, layers);
        lastLoad = st.load;
        Object.assign(moe, { moe_load: st.load, moe_balance: st.balance, moe_z: st.z, moe_dropped: st.dropped, moe_entropy: st.entropy });
      }
      // tokens_per_s counts samples for this task (a sample is one routed unit).
      store.appendMetric({ kind: 'train', step, loss, lr, tokens_per_s: samplesPerSec, time_s: (Date.now() - started) / 1000, ...moe });
      listener({ type: 'step', id: trial.id, step, loss, lr, tokensPerSec: samplesPerSec, elapsed: (Date.now() - started) / 1000 });
    }
    if (evalDue && step < steps) {
      await runEval(false);
      await save();
      status('running');
      lastLog = { step, time: performance.now() };
    }
  }
  if (step >= steps) await runEval(true);
  await save();
  const outcome = step >= steps ? 'done' : 'stopped';
  status(outcome);
  return { status: outcome, step, wallSeconds: (Date.now() - started) / 1000 };
}
