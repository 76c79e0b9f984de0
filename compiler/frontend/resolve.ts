// Resolution: the merged trees of a Scope (plus preset and sweep overrides) -> a resolved
// Pipeline (plain JSON), with defaults filled from the schema, units normalised (5% -> 0.05,
// 4x -> 4 * width, warmup 5% -> steps), and references checked. Records the source span of
// every field it read (by JSON pointer) so validation errors can point at the text.
// The parts: resolve-context.ts (Ctx, spans), read-block.ts (entries by schema), overrides.ts
// (presets and sweeps applied to a View); this file assembles the Pipeline from them.
import { didYouMean } from '../../grammar/diagnostics.js';
import { sourceLabels } from './corpora.js';
import type { Scope } from './load.js';
import { dataSchema, evaluateSchema, modelSchema, trainSchema } from './schema.js';
import type { DataSet, Evaluate, Model, MoeConfig, Pipeline, Train } from './types.js';
import { Ctx, type Override } from './resolve-context.js';
import { FRAC, MULT, PCT, type Marker, resolveObject } from './read-block.js';
import { applyOverrides, checkPath, type View, presetOverrides, presetSeeds } from './overrides.js';

export { applyOverrides, checkPath, Ctx, presetOverrides, presetSeeds };
export type { Override, View };

const vocabOf: Record<string, number> = { gpt2: 50257, bytes: 256 };

/**
 * `expert-width` / `shared-width` as written (a fraction of `ffn`: `0.25` or `25%`; or a whole
 * width) to the absolute width, null when it is `ffn` itself (so a config that says so is the same
 * trial as one that does not); then `granularity` m: m× the experts and top, 1/m the expert width.
 */
function resolveExpertWidths(moe: MoeConfig, ffn: number, ctx: Ctx): void {
  const width = (key: 'expertWidth' | 'sharedWidth'): number | null | undefined => {
    const v = moe[key] as unknown;
    if (v === null || v === undefined) return null;
    const ptr = `/model/moe/${key}`;
    const name = key === 'expertWidth' ? 'expert-width' : 'shared-width';
    const frac = typeof v === 'object' ? (v as Marker)[FRAC] : typeof v === 'number' && v > 0 && v < 1 ? v : undefined;
    if (frac !== undefined) {
      const w = Math.round(frac * ffn);
      if (frac > 0 && w >= 1) return w;
      ctx.error(`'${name}' ${typeof v === 'object' ? `${+(frac * 100).toPrecision(6)}%` : frac} of ffn ${ffn} is ${+(frac * ffn).toPrecision(6)}, under one unit`, ctx.spanOf(ptr), `write a fraction above ${+(0.5 / ffn).toPrecision(3)}, or a whole width`);
      return undefined;
    }
    if (typeof v === 'number' && !Number.isInteger(v)) {
      ctx.error(`'${name}' ${v} is neither a fraction of ffn (below 1) nor a whole width`, ctx.spanOf(ptr), `write e.g. ${name} 0.25 (a quarter of ffn ${ffn}), 25%, or ${Math.max(1, Math.round(ffn / 4))}`);
      return undefined;
    }
    return v as number; // a whole width; the schema checks its range
  };
  const ew = width('expertWidth');
  const sw = width('sharedWidth');
  // A value reported above is dropped, so the schema does not report it again.
  moe.expertWidth = ew ?? null;
  moe.sharedWidth = sw === undefined || sw === ffn ? null : sw;
  const m = moe.granularity;
  if (ew !== undefined && Number.isInteger(m) && m !== undefined && m > 1) {
    const base = ew ?? ffn;
    if (!Number.isInteger(base) || base % m !== 0) {
      const ok = [1, 2, 3, 4, 6, 8, 16].filter((d) => Number.isInteger(base) && base % d === 0);
      ctx.error(`granularity ${m} splits each expert's width ${base} into ${m} parts, but ${m} does not divide ${base}`, ctx.spanOf('/model/moe/granularity'), `use a granularity that divides ${base} (${ok.join(', ')}), or set expert-width to a multiple of ${m}`);
      return;
    }
    moe.expertWidth = base / m;
    if (Number.isInteger(moe.experts)) moe.experts *= m;
    if (Number.isInteger(moe.top)) moe.top *= m;
  }
  if (moe.expertWidth === ffn) moe.expertWidth = null;
}

/** Resolve a view of the scope into a pipeline; problems go to ctx. */
export function resolveView(scope: Scope, view: View, preset: string | null, ctx: Ctx): Pipeline {
  const data: Record<string, DataSet> = {};
  for (const [name, tree] of view.data) {
    const ptr = `/data/${name}`;
    ctx.spans.set(ptr, scope.data.get(name)!.nameSpan);
    const d = resolveObject(tree, dataSchema, ptr, ctx) as unknown as DataSet;
    d.name = name;
    if (!d.source) {
      ctx.error(`data set '${name}' has no source`, scope.data.get(name)!.nameSpan, `add a line such as: source brown`);
      d.source = { kind: 'text', languages: [], path: null };
    }
    d.labels = sourceLabels(d.source.kind, d.source.languages, d.label);
    d.vocab = d.source.kind === 'clusters' ? 0 : (vocabOf[d.tokenizer] ?? 0);
    data[name] = d;
  }

  ctx.spans.set('/train', scope.train?.nameSpan ?? scope.rootSpan);
  const train = resolveObject(view.train, trainSchema, '/train', ctx) as unknown as Train & { warmup: number | Marker };
  // The data set to train on.
  const dataNames = Object.keys(data);
  if (train.data === undefined) {
    if (dataNames.length === 0) ctx.error(`no data set is defined`, scope.rootSpan, `add one, e.g.: data corpus { source brown }`);
    train.data = dataNames[0] ?? '';
  } else if (!data[train.data]) {
    ctx.error(`train uses data set '${train.data}', which is not defined${didYouMean(train.data, dataNames)}`, ctx.spanOf('/train/data'), dataNames.length ? `defined data sets: ${dataNames.join(', ')}` : undefined);
  }
  // The model.
  const models = [...view.model.keys()];
  let modelName = train.model;
  if (modelName === undefined) {
    if (models.length === 0) ctx.error(`no model is defined`, scope.rootSpan, `add one, e.g.: model mini { layers 2  width 128  heads 2 }`);
    else if (models.length > 1) ctx.error(`several models are defined (${models.join(', ')}): choose one with 'model NAME' in the train block`, scope.train?.nameSpan ?? scope.rootSpan);
    modelName = models[0] ?? '';
    train.model = modelName;
  } else if (!view.model.has(modelName)) {
    ctx.error(`train uses model '${modelName}', which is not defined${didYouMean(modelName, models)}`, ctx.spanOf('/train/model'), models.length ? `defined models: ${models.join(', ')}` : undefined);
  }
  if (typeof train.warmup === 'object' && train.warmup !== null) train.warmup = Math.round((train.warmup[PCT] ?? 0) * train.steps);
  // NGD normalises each expert's gradient: global clipping does not apply, so its default is off.
  if (train.optimizer === 'ngd' && !ctx.spans.has('/train/clip')) train.clip = 0;
  // `synthetic { seed none }`: each trial's data set is drawn from its own seed.
  for (const d of Object.values(data)) if (d.source.kind === 'clusters' && d.synthetic.seed === null && typeof train.seed === 'number') d.synthetic.seed = train.seed;

  ctx.spans.set('/model', scope.model.get(modelName)?.nameSpan ?? scope.rootSpan);
  const model = resolveObject(view.model.get(modelName), modelSchema, '/model', ctx) as unknown as Model & { ffn: number | Marker | undefined };
  model.name = modelName;
  const trainData = data[train.data];
  if (trainData?.source.kind === 'clusters') {
    // The patch model (Chen et al. 2022) has no width: ffn is its filters per expert, as a number.
    if (model.ffn === undefined) ctx.error(`the patch model of the cluster task needs 'ffn', its filters per expert`, ctx.spanOf('/model'), 'write e.g. ffn 16 in the model block');
    else if (typeof model.ffn === 'object') ctx.error(`for the patch model of the cluster task 'ffn' is the number of filters per expert, not a multiple of the width`, ctx.spanOf('/model/ffn'), 'write a number, e.g. ffn 16');
    if (typeof model.ffn !== 'number') model.ffn = 1;
  }
  if (model.ffn === undefined) model.ffn = 4 * model.width;
  else if (typeof model.ffn === 'object' && model.ffn !== null) model.ffn = Math.max(1, Math.round((model.ffn[MULT] ?? 4) * model.width));
  model.vocab = trainData?.vocab ?? 0;
  model.context = trainData ? (trainData.source.kind === 'clusters' ? trainData.synthetic.patches : trainData.context) : 0;
  if (model.moe) {
    const every = model.moe.every;
    const layers: number[] = [];
    if (Number.isInteger(every) && every >= 1 && Number.isInteger(model.layers)) for (let i = every - 1; i < model.layers && layers.length < 4096; i += every) layers.push(i);
    model.moe.layers = layers;
    if (typeof model.ffn === 'number') resolveExpertWidths(model.moe, model.ffn, ctx);
  }

  ctx.spans.set('/evaluate', scope.evaluate?.nameSpan ?? scope.rootSpan);
  const evaluate = resolveObject(view.evaluate, evaluateSchema, '/evaluate', ctx) as unknown as Evaluate;
  if (!evaluate.perplexity) evaluate.perplexity = data[train.data] ? [{ data: train.data, split: 'valid' }] : [];
  const refs: [string, { data: string; label?: string }][] = [
    ...evaluate.perplexity.map((r, i) => [`/evaluate/perplexity/${i}`, r] as [string, { data: string }]),
    ...evaluate.experts.map((r, i) => [`/evaluate/experts/${i}`, r] as [string, { data: string; label: string }]),
  ];
  for (const [ptr, r] of refs) {
    const d = data[r.data];
    if (!d) {
      ctx.error(`evaluate names data set '${r.data}', which is not defined${didYouMean(r.data, dataNames)}`, ctx.spanOf(`${ptr}/data`), dataNames.length ? `defined data sets: ${dataNames.join(', ')}` : undefined);
    } else if (r.label !== undefined && !d.labels.includes(r.label)) {
      ctx.error(`data set '${r.data}' has no label '${r.label}'${didYouMean(r.label, d.labels)}`, ctx.spanOf(`${ptr}/label`), d.labels.length ? `'${r.data}' carries: ${d.labels.join(', ')}` : `'${r.data}' (source ${d.source.kind}) carries no labels`);
    }
  }

  return {
    version: 1,
    preset,
    data,
    model: model as Model,
    train: train as Train,
    evaluate,
    sweep: null,
  };
}
