import { sequentialBatches, trainBatcher, type PreparedText, type TextBatch } from '../data/index.js';
import type { GpuModel } from './model.js';
import { tokenizer } from '../data/index.js';
import { expertAssignment, TokenTally } from './experts.js';
import { runTrainingLoop, type TrainOutcome, type TrialRun } from './loop.js';

export type { TrainOutcome } from './loop.js';

export interface EvalSet {
  /** As written in .moe, e.g. "brown.valid". */
  name: string;
  data: PreparedText;
  split: 'train' | 'valid';
}

export interface TrainOptions extends TrialRun {
  model: GpuModel;
  data: PreparedText;
  evals: EvalSet[];
  /** Data sets named by `evaluate.experts` lines, by name. */
  expertData?: Map<string, PreparedText>;
}

/** Perplexity on the first `batches` validation batches (all of them when `batches` is 0). */
export async function perplexity(model: GpuModel, e: EvalSet, batches: number, routeLabel: string | null): Promise<{ loss: number; tokens: number }> {
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
 * Trains one trial's language model to its last step (see runTrainingLoop): evaluates perplexity
 * on the first `evaluate.batches` validation batches every `evaluate.every` steps and over the whole
 * validation split at the end, with expert assignment by label and the tokens each expert takes most.
 */
export async function trainTrial(o: TrainOptions): Promise<TrainOutcome> {
  const { model, trial, store, listener } = o;
  const cfg = trial.config;
  const seed = trial.seed;
  const batcher = trainBatcher(o.data, { context: cfg.model.context, batch: cfg.train.batch, seed, balance: cfg.train.sample === 'balanced' ? cfg.train.balanceBy : null });
  // Label routers read the label the .moe names; the batch carries one id per window.
  const routeLabel = cfg.model.moe?.router === 'label' ? cfg.model.moe.label : null;
  // evaluate.batches counts batches of the train.batch the file writes: with the micro-batch split
  // the compiler chose (lower/fit.ts), as many more smaller ones, so the same windows are evaluated.
  const split = model.compiled.split;
  const evalBatches = cfg.evaluate.batches * (split ? split.accumulate / split.from.accumulate : 1);
  const evaluate = async (step: number, final: boolean, lastLoad: number[][] | undefined) => {
    const extra: Record<string, number | string> = {};
    let first: { loss: number } | undefined;
    for (const e of o.evals) {
      // A label router cannot route data that lacks its label (e.g. language routing on an English-only set).
      if (routeLabel && !e.data.labels.some((l) => l.name === routeLabel)) {
        extra[`${e.name}.skipped`] = `no '${routeLabel}' label to route by`;
        continue;
      }
      const r = await perplexity(model, e, final ? 0 : evalBatches, routeLabel);
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
      const counts = await expertAssignment(model, data, ref.split, ref.label, evalBatches, t, routeLabel);
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
  return runTrainingLoop(o, {
    model, batcher, evaluate,
    unitsPerStep: cfg.train.batch * cfg.model.context * cfg.train.accumulate,
    step: (step, lr) => {
      const micro: { tokens: Uint32Array; targets: Uint32Array; labels?: Uint32Array }[] = [];
      for (let i = 0; i < cfg.train.accumulate; i++) {
        const b: TextBatch = batcher.next();
        micro.push({ tokens: b.inputs, targets: b.targets, ...(routeLabel ? { labels: b.labels[routeLabel] } : {}) });
      }
      model.trainStep(step, lr, seed, micro);
    },
  });
}
