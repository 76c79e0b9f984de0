// `moec eval`: perplexity and expert assignment by label of trained trials on a data set, with the
// trainer's own evaluation code (the whole split, the trial's batch size, dropout off).
import type { TrialConfig } from '../../compiler/frontend/types.js';
import { compileTrial } from '../../compiler/lower/compile.js';
import { UserError } from '../../grammar/user-error.js';
import { checkSameTokenizer, type PreparedText } from '../data/index.js';
import type { Gpu } from '../gpu/device.js';
import { expertAssignment } from '../train/experts.js';
import { GpuModel } from '../train/model.js';
import { perplexity } from '../train/trainer.js';
import { languageModelConfig, loadWeights, type TrainedTrial } from './trained.js';

export interface TrialEval {
  trial: string;
  name: string;
  params: Record<string, string>;
  seed: number;
  step: number;
  checkpoint: string;
  data: string;
  split: 'train' | 'valid';
  tokens: number;
  loss: number;
  ppl: number;
  /** Per routing layer: label value → assignments per expert (in windows); empty without --by or for a dense model. */
  experts: { layer: number; counts: Record<string, number[]> }[];
}

/** Refuses data the model cannot score: another tokenizer, a label the router or --by needs missing. */
export function checkEvalData(c: TrialConfig, data: PreparedText, by: string | undefined, where: string): void {
  const own = c.data[c.train.data]!;
  checkSameTokenizer(data, { tokenizer: own.tokenizer, vocab: c.model.vocab, what: `the model (trained on '${own.name}')` }, where);
  const route = c.model.moe?.router === 'label' ? c.model.moe.label : null;
  if (route && !data.labels.some((l) => l.name === route)) {
    throw new UserError(`the model routes by the label '${route}', which data '${data.name}' does not carry`, { where, hint: `evaluate on data labelled by ${route}` });
  }
  if (by && !data.labels.some((l) => l.name === by)) {
    throw new UserError(`data '${data.name}' carries no label '${by}'`, { where: '--by', hint: data.labels.length ? `it carries: ${data.labels.map((l) => l.name).join(', ')}` : 'it carries no labels (a folder of files labels by folder; JSONL/Parquet: --label-field)' });
  }
}

export async function evaluateTrial(gpu: Gpu, t: TrainedTrial, data: PreparedText, split: 'train' | 'valid', label: string, by?: string, batches = 0): Promise<TrialEval> {
  const c = languageModelConfig(t, 'evaluation');
  checkEvalData(c, data, by, '--data');
  const rows = split === 'valid' ? data.valid : data.train;
  if (!rows.tokens.length) throw new UserError(`the ${split} split of '${label}' is empty: nothing to evaluate`, { where: '--data', hint: split === 'valid' ? 'name the train split (NAME.train), or a data set with valid > 0' : 'name data with some text' });
  const model = await GpuModel.create(gpu, compileTrial(c, t.record.id), `eval ${t.record.id}`);
  try {
    loadWeights(model, t);
    const route = c.model.moe?.router === 'label' ? c.model.moe.label : null;
    const r = await perplexity(model, { name: label, data, split }, batches, route);
    const experts = by && c.model.moe ? await expertAssignment(model, data, split, by, batches > 0 ? batches : Number.MAX_SAFE_INTEGER, undefined, route) : [];
    const rec = t.record;
    return { trial: rec.id, name: rec.name, params: rec.params, seed: rec.seed, step: t.step, checkpoint: t.checkpoint, data: label, split, tokens: r.tokens, loss: r.loss, ppl: Math.exp(r.loss), experts };
  } finally {
    model.destroy();
  }
}
