import { ClusterBatcher, FullBatcher, type PreparedClusters } from '../data/index.js';
import { runTrainingLoop, type TrainOutcome, type TrialRun } from './loop.js';
import { clusterExpertEntropy, dispatchEntropy } from './dispatch-entropy.js';
import type { PatchModel } from './patch-model.js';

export interface PatchEvalSet {
  /** As written in .moe, e.g. "blobs.valid". */
  name: string;
  data: PreparedClusters;
  split: 'train' | 'valid';
}

export interface PatchTrainOptions extends TrialRun {
  model: PatchModel;
  data: PreparedClusters;
  evals: PatchEvalSet[];
  /** `evaluate.experts` lines' data sets, by name. */
  expertData?: Map<string, PreparedClusters>;
}

/**
 * Trains the patch model of the cluster task with the shared loop (runTrainingLoop), measuring
 * what the task reports: test accuracy, dispatch entropy (Chen et al.'s H(cluster | expert)), its
 * mirror H(expert | cluster) as cluster_expert_entropy, and the cluster × expert dispatch table.
 * Periodic evaluations use the first `evaluate.batches` batches; the last one the whole split.
 */
export async function trainPatchTrial(o: PatchTrainOptions): Promise<TrainOutcome> {
  const { model, trial, store, listener } = o;
  const cfg = trial.config;
  const seed = trial.seed;
  const { batch, patches, dim } = model.shape;
  const batcher = model.shape.fullBatch ? new FullBatcher(o.data.train) : new ClusterBatcher(o.data.train, patches, dim, batch, seed);
  if (batcher.batch !== batch) throw new Error(`full batch of ${batcher.batch} training samples, but the plan was compiled for ${batch}`);
  const evaluate = async (step: number, final: boolean, lastLoad: number[][] | undefined) => {
    const extra: Record<string, number> = {};
    let first: { loss: number; accuracy: number; entropy: number; spread: number } | undefined;
    const dispatchOf = new Map<string, number[][]>();
    for (const e of o.evals) {
      const r = await model.evaluate(e.split === 'valid' ? e.data.valid : e.data.train, final ? 0 : cfg.evaluate.batches);
      const entropy = dispatchEntropy(r.dispatch);
      const spread = clusterExpertEntropy(r.dispatch);
      first ??= { loss: r.loss, accuracy: r.accuracy, entropy, spread };
      dispatchOf.set(e.name, r.dispatch);
      Object.assign(extra, { [`${e.name}.loss`]: r.loss, [`${e.name}.acc`]: r.accuracy, [`${e.name}.dispatch_entropy`]: entropy, [`${e.name}.cluster_expert_entropy`]: spread, [`${e.name}.samples`]: r.samples });
    }
    const loss = first?.loss ?? NaN;
    store.appendMetric({ kind: 'eval', step, valid_loss: loss, valid_ppl: Math.exp(loss), valid_acc: first?.accuracy ?? NaN, dispatch_entropy: first?.entropy ?? NaN, cluster_expert_entropy: first?.spread ?? NaN, final, ...extra });
    for (const ref of cfg.evaluate.experts) {
      const name = `${ref.data}.${ref.split}`;
      let table = dispatchOf.get(name);
      if (!table) {
        const data = o.expertData?.get(ref.data);
        if (!data) continue;
        table = (await model.evaluate(ref.split === 'valid' ? data.valid : data.train, final ? 0 : cfg.evaluate.batches)).dispatch;
      }
      store.appendExperts({ step, data: name, label: ref.label, layers: [{ layer: 0, counts: Object.fromEntries(table.map((row, k) => [String(k), row])) }] });
    }
    listener({ type: 'eval', id: trial.id, step, validLoss: loss, validPpl: Math.exp(loss), ...(first ? { validAcc: first.accuracy } : {}), ...(lastLoad ? { expertLoad: lastLoad } : {}) });
  };
  // Throughput counts samples for this task (a sample is the routed unit).
  return runTrainingLoop(o, { model, batcher, evaluate, unitsPerStep: batch, step: (step, lr) => model.trainStep(step, lr, seed, batcher.next()) });
}
