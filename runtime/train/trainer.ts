import type { Trial } from '../../compiler/frontend/types.js';
import { sequentialBatches, trainBatcher, type BatcherState, type PreparedText, type TextBatch } from '../data/index.js';
import type { TrialStore } from '../store/run-store.js';
import type { SweepListener } from './events.js';
import type { GpuModel } from './model.js';
import { tokenizer } from '../data/index.js';
import { expertAssignment, moeLayers, readMoeStats, TokenTally } from './experts.js';
import { lrAt } from './schedule.js';
import { checkpointTensors, restoreTensors } from './checkpoint.js';

export interface EvalSet {
  /** As written in .moe, e.g. "brown.valid". */
  name: string;
  data: PreparedText;
  split: 'train' | 'valid';
}

export interface TrainOptions {
  model: GpuModel;
  trial: Trial;
  data: PreparedText;
  evals: EvalSet[];
  /** Data sets named by `evaluate.experts` lines, by name. */
  expertData?: Map<string, PreparedText>;
  store: TrialStore;
  listener: SweepListener;
  adapter: string;
  /** Set by Ctrl-C: finish the step, checkpoint, return 'stopped'. */
  stop: { requested: boolean };
  /** Read the training loss back every this many steps (each read is a GPU sync). */
  logEvery?: number;
}

export type TrainOutcome = { status: 'done' | 'stopped'; step: number; wallSeconds: number };

interface SavedState {
  step: number;
  batcher: BatcherState;
  seed: number;
}

/** Perplexity on the first `batches` validation batches (all of them when `batches` is 0). */
async function evaluate(model: GpuModel, e: EvalSet, batches: number, routeLabel: string | null): Promise<{ loss: number; tokens: number }> {
  const { batch, context } = model.spec;
  const split = e.split === 'valid' ? e.data.valid : e.data.train;
  function* limited(): Generator<{ tokens: Uint32Array; targets: Uint32Array; labels?: Uint32Array }> {
    let i = 0;
    for (const b of sequentialBatches(e.data, split, context, batch)) {
      if (batches > 0 && i++ >= batches) return;
      const labels = routeLabel ? b.labels[routeLabel] : undefined;
      yield { tokens: b.inputs, targets: b.targets, ...(labels ? { labels } : {}) };
    }
  }
  return model.evalLoss(limited());
}

/**
 * Trains one trial to its last step: resumes from the latest checkpoint if there is one, evaluates
 * every `evaluate.every` steps (and over the whole validation split at the end), checkpoints at
 * each evaluation, and streams metrics to the store and the listener. The loss is read back only
 * every `logEvery` steps, so the GPU runs ahead of the host in between.
 */
export async function trainTrial(o: TrainOptions): Promise<TrainOutcome> {
  const { model, trial, store, listener } = o;
  const cfg = trial.config;
  const steps = cfg.train.steps;
  const seed = trial.seed;
  const started = Date.now();
  const batcher = trainBatcher(o.data, { context: cfg.model.context, batch: cfg.train.batch, seed });
  let step = 0;
  const ck = store.resume();
  if (ck) {
    restoreTensors(model, ck.tensors, ck.path);
    const st = ck.state as unknown as SavedState;
    batcher.restore(st.batcher);
    step = st.step;
  } else {
    model.initParams(seed);
  }
  listener({ type: 'trial-start', id: trial.id, ...(ck ? { resumedFrom: step } : {}) });
  const logEvery = o.logEvery ?? Math.max(1, Math.min(10, Math.floor(cfg.evaluate.every / 2)));
  const tokensPerStep = cfg.train.batch * cfg.model.context * cfg.train.accumulate;
  let lastLog = { step, time: performance.now() };
  let tokensPerSec = 0;
  const status = (state: 'running' | 'done' | 'stopped') =>
    store.writeStatus({ state, step, steps, started: new Date(started).toISOString(), ...(state === 'running' ? {} : { finished: new Date().toISOString() }), wall_s: (Date.now() - started) / 1000, tokens_per_s: tokensPerSec, adapter: o.adapter });
  const save = async () => {
    const state: SavedState = { step, batcher: batcher.state(), seed };
    const ref = store.saveCheckpoint(step, await checkpointTensors(model), state as unknown as Record<string, unknown>);
    listener({ type: 'checkpoint', id: trial.id, step, path: ref.path });
  };
  const layers = moeLayers(model);
  let lastLoad: number[][] | undefined;
  // Label routers read the label the .moe names; the batch carries one id per window.
  const routeLabel = cfg.model.moe?.router === 'label' ? cfg.model.moe.label : null;
  const runEval = async (final: boolean) => {
    const extra: Record<string, number | string> = {};
    let first: { loss: number } | undefined;
    for (const e of o.evals) {
      // A label router cannot route data that lacks its label (e.g. language routing on an English-only set).
      if (routeLabel && !e.data.labels.some((l) => l.name === routeLabel)) {
        extra[`${e.name}.skipped`] = `no '${routeLabel}' label to route by`;
        continue;
      }
      const r = await evaluate(model, e, final ? 0 : cfg.evaluate.batches, routeLabel);
      first ??= r;
      extra[`${e.name}.loss`] = r.loss;
      extra[`${e.name}.ppl`] = Math.exp(r.loss);
      extra[`${e.name}.tokens`] = r.tokens;
    }
    const loss = first?.loss ?? NaN;
    store.appendMetric({ kind: 'eval', step, valid_loss: loss, valid_ppl: Math.exp(loss), final, ...extra });
    const tally = new TokenTally(model);
    let tallied: { data: string; tok: 'gpt2' | 'bytes' } | undefined;
    for (const ref of cfg.evaluate.experts) {
      const data = o.expertData?.get(ref.data);
      if (!data) continue;
      // The tokens each expert takes most, from the first `experts` line's data.
      const t = tallied ? undefined : tally;
      const counts = await expertAssignment(model, data, ref.split, ref.label, cfg.evaluate.batches, t, routeLabel);
      if (!counts.length) continue;
      if (t) tallied = { data: `${ref.data}.${ref.split}`, tok: data.tokenizer };
      store.appendExperts({ step, data: `${ref.data}.${ref.split}`, label: ref.label, layers: counts });
    }
    if (tallied) {
      const tok = tokenizer(tallied.tok);
      const top = tally.top(12);
      if (top.layers.length) {
        store.writeArtifact('top-tokens.json', {
          step, data: tallied.data, tokenizer: tallied.tok,
          layers: top.layers.map((l) => ({ ...l, experts: l.experts.map((e) => ({ ...e, tokens: e.tokens.map((x) => ({ ...x, text: tok.decode([x.token]) })) })) })),
        });
      }
    }
    listener({ type: 'eval', id: trial.id, step, validLoss: loss, validPpl: Math.exp(loss), ...(lastLoad ? { expertLoad: lastLoad } : {}) });
  };
  status('running');
  while (step < steps && !o.stop.requested) {
    const lr = lrAt(step, cfg.train);
    const micro: { tokens: Uint32Array; targets: Uint32Array; labels?: Uint32Array }[] = [];
    for (let i = 0; i < cfg.train.accumulate; i++) {
      const b: TextBatch = batcher.next();
      micro.push({ tokens: b.inputs, targets: b.targets, ...(routeLabel ? { labels: b.labels[routeLabel] } : {}) });
    }
    step++;
    model.trainStep(step, lr, seed, micro);
    const evalDue = step % cfg.evaluate.every === 0 || step === steps;
    if (step % logEvery === 0 || evalDue || step === 1) {
      const loss = await model.trainLoss();
      const now = performance.now();
      tokensPerSec = ((step - lastLog.step) * tokensPerStep) / ((now - lastLog.time) / 1000);
      lastLog = { step, time: now };
      if (!Number.isFinite(loss)) throw new Error(`training loss is ${loss} at step ${step}: the run diverged (lower train.lr, or set train.clip)`);
      const moe: Record<string, unknown> = {};
      if (layers.length) {
        const st = await readMoeStats(model, layers);
        lastLoad = st.load;
        Object.assign(moe, { moe_load: st.load, moe_balance: st.balance, moe_z: st.z, moe_dropped: st.dropped, moe_entropy: st.entropy });
      }
      store.appendMetric({ kind: 'train', step, loss, lr, tokens_per_s: tokensPerSec, time_s: (Date.now() - started) / 1000, ...moe });
      listener({ type: 'step', id: trial.id, step, loss, lr, tokensPerSec, elapsed: (Date.now() - started) / 1000 });
    }
    if (evalDue && step < steps) {
      await runEval(false);
      await save();
      status('running');
      lastLog = { step, time: performance.now() }; // tokens/s measures training only
    }
  }
  if (step >= steps) await runEval(true);
  await save();
  const outcome = step >= steps ? 'done' : 'stopped';
  status(outcome);
  return { status: outcome, step, wallSeconds: (Date.now() - started) / 1000 };
}
