// Validation of a resolved pipeline: the JSON Schema (ajv, all errors at once, mapped back to
// the source text through the spans recorded while resolving) and the semantic checks a schema
// cannot express (heads divide width, top-k at most the experts, labels the data has, ...).
import AjvModule, { type ErrorObject } from 'ajv';
import { didYouMean, warning } from '../../grammar/diagnostics.js';
import type { Ctx } from './resolve.js';
import { corpusLanguages } from './corpora.js';
import { dataSchema, keyName, pipelineSchema } from './schema.js';
import type { Pipeline } from './types.js';

type AjvCtor = new (opts: Record<string, unknown>) => { compile: (s: unknown) => ((d: unknown) => boolean) & { errors?: ErrorObject[] | null } };
const Ajv = ((AjvModule as unknown as { default?: AjvCtor }).default ?? AjvModule) as unknown as AjvCtor;
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
export const validatePipelineSchema = ajv.compile(pipelineSchema);

function keyOf(ptr: string): string {
  const parts = ptr.split('/').filter((p) => p !== '' && !/^\d+$/.test(p));
  let k = parts[parts.length - 1] ?? 'value';
  if (k === 'kind' && parts[parts.length - 2] === 'source') k = 'source';
  if (k === 'languages') k = 'language';
  return keyName(k);
}

function fmt(x: unknown): string {
  return typeof x === 'string' ? `'${x}'` : JSON.stringify(x);
}

function message(e: ErrorObject): string {
  const key = keyOf(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'enum': {
      const allowed = (p['allowedValues'] as unknown[]).map(String);
      if (typeof e.data !== 'string') return `'${key}' must be one of ${allowed.join(', ')}; found ${fmt(e.data)}`;
      return `unknown ${key} ${fmt(e.data)}${didYouMean(String(e.data), allowed)}`;
    }
    case 'type':
      if (p['type'] === 'integer' || (Array.isArray(p['type']) && (p['type'] as string[]).includes('integer'))) return `'${key}' must be a whole number, found ${fmt(e.data)}`;
      return `'${key}' must be a ${String(p['type']).replace(',null', '')}, found ${fmt(e.data)}`;
    case 'minimum':
      return `'${key}' must be at least ${p['limit']}, found ${fmt(e.data)}`;
    case 'exclusiveMinimum':
      return `'${key}' must be greater than ${p['limit']}, found ${fmt(e.data)}`;
    case 'maximum':
      return `'${key}' must be at most ${p['limit']}, found ${fmt(e.data)}`;
    case 'exclusiveMaximum':
      return `'${key}' must be less than ${p['limit']}, found ${fmt(e.data)}`;
    case 'minItems':
    case 'maxItems':
      return `'${key}' needs ${(e.parentSchema as { minItems?: number }).minItems === (e.parentSchema as { maxItems?: number }).maxItems ? 'exactly' : e.keyword === 'minItems' ? 'at least' : 'at most'} ${p['limit']} values, found ${(e.data as unknown[]).length}`;
    default:
      return `${key} ${e.message ?? 'is invalid'}`;
  }
}

function hint(e: ErrorObject): string | undefined {
  if (e.keyword === 'enum') return `choose one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return undefined;
}

/** Schema errors of a resolved pipeline, as diagnostics at the text that produced each value. */
export function schemaCheck(p: Pipeline, ctx: Ctx): void {
  if (validatePipelineSchema(p)) return;
  for (const e of validatePipelineSchema.errors ?? []) {
    if (e.keyword === 'type' && (e.data === undefined || e.data === null) && e.instancePath.endsWith('/label')) continue;
    ctx.error(message(e), ctx.spanOf(e.instancePath), hint(e));
  }
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

/** Checks that need several fields at once. */
export function semanticCheck(p: Pipeline, ctx: Ctx): void {
  const m = p.model;
  if (isInt(m.width) && isInt(m.heads) && m.heads > 0 && m.width % m.heads !== 0) {
    const ok = [1, 2, 4, 8, 16, 32].filter((h) => m.width % h === 0);
    ctx.error(`heads (${m.heads}) must divide width (${m.width})`, ctx.spanOf('/model/heads'), `heads that divide ${m.width}: ${ok.join(', ')}`);
  }
  const moe = m.moe;
  if (moe) {
    if (moe.dispatch === 'sparse' && isInt(moe.top) && isInt(moe.experts) && moe.top > moe.experts) {
      ctx.error(`top-k (${moe.top}) exceeds the number of experts (${moe.experts})`, ctx.spanOf('/model/moe/top'), `top can be at most ${moe.experts}`);
    }
    if (isInt(moe.every) && isInt(m.layers) && moe.every > m.layers) {
      ctx.error(`moe every ${moe.every}, but the model has only ${m.layers} layer${m.layers === 1 ? '' : 's'}: no layer would have experts`, ctx.spanOf('/model/moe/every'));
    }
    if (moe.prefix !== null && moe.unit !== 'sequence') {
      ctx.error(`prefix applies only to sequence routing`, ctx.spanOf('/model/moe/prefix'), `write: unit sequence(prefix ${moe.prefix})`);
    } else if (moe.prefix !== null && isInt(m.context) && m.context > 0 && moe.prefix > m.context) {
      ctx.error(`routing prefix (${moe.prefix}) is longer than the context (${m.context})`, ctx.spanOf('/model/moe/prefix'));
    }
    if (moe.router === 'label') {
      const d = p.data[p.train.data];
      if (moe.label === null) {
        ctx.error(`a label router needs the label that picks the expert`, ctx.spanOf('/model/moe/router'), `write: router label(${d?.labels[0] ?? 'language'})`);
      } else if (d && !d.labels.includes(moe.label)) {
        ctx.error(`router label(${moe.label}) needs a label the training data '${d.name}' has${didYouMean(moe.label, d.labels)}`, ctx.spanOf('/model/moe/label'),
          d.labels.length ? `'${d.name}' carries: ${d.labels.join(', ')}` : `'${d.name}' (source ${d.source.kind}) carries no labels`);
      }
    } else if (moe.label !== null) {
      ctx.error(`'label' applies only to 'router label(...)'`, ctx.spanOf('/model/moe/label'));
    }
    if (moe.second === 'sampled' && isInt(moe.top) && moe.top !== 2) {
      ctx.error(`'second sampled' (GShard) needs top 2, found top ${moe.top}`, ctx.spanOf('/model/moe/second'));
    }
    if (isInt(moe.shared) && isInt(moe.experts) && moe.shared >= 1 && moe.dispatch === 'soft') {
      ctx.error(`shared experts do not combine with soft dispatch`, ctx.spanOf('/model/moe/shared'));
    }
    if (moe.choice === 'expert' && moe.dispatch !== 'soft') {
      // An expert ranks all tokens of its group, later ones included: token t's routing depends on
      // the future, so a causal language model's perplexity gains information it could not have.
      const over = moe.choiceGroup === 'sequence' ? 'its sequence' : 'the micro-batch';
      ctx.diagnostics.push(warning(
        `expert choice is not causal: each expert picks its tokens among all tokens of ${over}, so whether token t gets an expert depends on the scores of later tokens (it sees later tokens), and its validation perplexity is not a valid causal language-model number`,
        ctx.spanOf('/model/moe/choice'),
        'compare it with causal (token-choice or dense) models only with this caveat; choice expert(sequence) confines the leak to the token\'s own sequence',
      ));
    }
    // Linear experts are one width × width map: there is no hidden width to set or split.
    if (moe.expert === 'linear') for (const k of ['expertWidth', 'granularity'] as const) {
      if (ctx.spans.has(`/model/moe/${k}`) && moe[k] !== null && moe[k] !== 1) ctx.error(`'${keyName(k)}' sets the hidden width of MLP experts; linear experts (expert linear) have none`, ctx.spanOf(`/model/moe/${k}`), `remove ${keyName(k)}, or use expert mlp`);
    }
    if (moe.sharedWidth != null && moe.shared === 0) {
      ctx.error(`'shared-width' sets the width of shared experts, but the model has none (shared 0)`, ctx.spanOf('/model/moe/sharedWidth'), 'add e.g. shared 1, or remove shared-width');
    }
    if (moe.dispatch === 'soft') {
      // Soft MoE mixes every token of a sequence into each slot: a language model's token t then
      // sees tokens after t through its FFN, and its perplexity is not a causal-LM number.
      ctx.diagnostics.push(warning(
        `Soft MoE is not causal: each token's output mixes slots computed from all tokens of its sequence, later tokens included, so its validation perplexity is not a valid causal language-model number`,
        ctx.spanOf('/model/moe/dispatch'),
        'compare it with causal (sparse or dense) models only with this caveat; top, capacity and balance do not apply to dispatch soft and are ignored',
      ));
    }
  }
  const t = p.train;
  if (isInt(t.warmup) && isInt(t.steps) && t.warmup > t.steps) {
    ctx.error(`warmup (${t.warmup} steps) is longer than training (${t.steps} steps)`, ctx.spanOf('/train/warmup'));
  }
  if (isInt(p.evaluate.every) && isInt(t.steps) && p.evaluate.every > t.steps) {
    ctx.diagnostics.push(warning(`evaluation every ${p.evaluate.every} steps, but training has ${t.steps}: it is evaluated only at the end`, ctx.spanOf('/evaluate/every')));
  }
  for (const d of Object.values(p.data)) {
    const ptr = `/data/${d.name}`;
    const langs = corpusLanguages(d.source.kind);
    if (langs) {
      d.source.languages.forEach((l, i) => {
        if (!langs.includes(l)) ctx.error(`corpus '${d.source.kind}' has no language '${l}'${didYouMean(l, langs)}`, ctx.spanOf(`${ptr}/source/languages/${i}`), `languages: ${langs.join(', ')}`);
      });
      const seen = new Set<string>();
      d.source.languages.forEach((l, i) => {
        if (seen.has(l)) ctx.error(`language '${l}' is listed twice`, ctx.spanOf(`${ptr}/source/languages/${i}`));
        seen.add(l);
      });
    }
    for (const [prop, ps] of Object.entries(dataSchema.properties ?? {})) {
      const applies = ps['x-applies'];
      if (!applies || applies.includes(d.source.kind) || !ctx.spans.has(`${ptr}/${prop}`)) continue;
      ctx.error(`'${keyName(prop)}' applies only to source ${applies.join(' or ')}, not to source ${d.source.kind}`, ctx.spanOf(`${ptr}/${prop}`));
    }
    const syn = d.synthetic;
    for (const r of ['feature', 'centre', 'distractor'] as const) {
      const v = syn?.[r];
      if (Array.isArray(v) && v.length === 2 && v[0]! > v[1]!) ctx.error(`'${r}' range [${v[0]}, ${v[1]}] is reversed: write [LOW, HIGH]`, ctx.spanOf(`${ptr}/synthetic/${r}`));
    }
  }
  // An empty split would evaluate to loss 0 and perplexity 1.00: refuse it here, where it is written.
  const refs = [...(p.evaluate.perplexity ?? []).map((r, i) => ({ r, ptr: `/evaluate/perplexity/${i}` })), ...(p.evaluate.experts ?? []).map((r, i) => ({ r, ptr: `/evaluate/experts/${i}` }))];
  for (const { r, ptr } of refs) {
    const d = p.data[r.data];
    if (!d || r.split !== 'valid' || d.valid !== 0) continue;
    const written = ctx.spans.has(`${ptr}/data`);
    ctx.error(`data set '${d.name}' has 'valid 0', so its valid split is empty and ${written ? 'this evaluation' : 'the default evaluation (perplexity on the training data\'s valid split)'} has nothing to measure`,
      written ? ctx.spanOf(`${ptr}/data`) : ctx.spanOf(`/data/${d.name}/valid`),
      `hold out some data (e.g. valid 5%)${written ? `, or evaluate on ${d.name}.train` : ''}`);
  }
  const td = p.data[t.data];
  if (t.sample === 'balanced') {
    if (t.balanceBy === null) ctx.error(`balanced sampling needs the label to balance`, ctx.spanOf('/train/sample'), `write: sample balanced(${td?.labels[0] ?? 'language'})`);
    else if (td && !td.labels.includes(t.balanceBy)) {
      ctx.error(`sample balanced(${t.balanceBy}) needs a label the training data '${td.name}' has${didYouMean(t.balanceBy, td.labels)}`, ctx.spanOf('/train/balanceBy'),
        td.labels.length ? `'${td.name}' carries: ${td.labels.join(', ')}` : `'${td.name}' (source ${td.source.kind}) carries no labels`);
    } else if (td?.source.kind === 'clusters') ctx.error(`balanced sampling applies to text data; the cluster task draws samples uniformly`, ctx.spanOf('/train/sample'));
  } else if (t.balanceBy !== null) ctx.error(`'balance-by' applies only to 'sample balanced(...)'`, ctx.spanOf('/train/balanceBy'));
  if (td && td.source.kind === 'clusters') {
    // The cluster task trains the patch model of Chen et al. 2022, not a transformer: settings of
    // the transformer or of token routing would be silently meaningless there, so they are refused.
    const hint = 'the patch model takes ffn (filters per expert) and moe { experts, top 1, router learned|frozen, noise, noise-dist, balance, zloss, expert, activation }';
    for (const k of ['layers', 'width', 'heads', 'dropout']) {
      if (ctx.spans.has(`/model/${k}`)) ctx.error(`'${keyName(k)}' does not apply to the patch model of the cluster task (Chen et al. 2022)`, ctx.spanOf(`/model/${k}`), hint);
    }
    for (const k of ['every', 'unit', 'prefix', 'scope', 'capacity', 'second', 'dispatch', 'slots', 'dim', 'label', 'shared', 'expertWidth', 'sharedWidth', 'granularity', 'balanceOver']) {
      if (ctx.spans.has(`/model/moe/${k}`)) ctx.error(`'${keyName(k)}' does not apply to the patch model of the cluster task (Chen et al. 2022): it routes each whole sample to one expert`, ctx.spanOf(`/model/moe/${k}`), hint);
    }
  }
  chenKeysCheck(p, ctx);
  if (t.optimizer === 'ngd') {
    // NGD normalises each expert's gradient block of the patch model; a language model has no such
    // blocks defined for it, and global-norm clipping would be a no-op or a silent rescale.
    if (td && td.source.kind !== 'clusters') {
      ctx.error(`optimizer ngd (normalised gradient descent per expert, Chen et al. 2022) is implemented for the patch model of the cluster task only; '${td.name}' is source ${td.source.kind}`, ctx.spanOf('/train/optimizer'), 'use optimizer adamw, adam or sgd for language models');
    } else if (typeof t.clip === 'number' && t.clip > 0) {
      const written = ctx.spans.has('/train/clip');
      ctx.error(`optimizer ngd normalises each expert's gradient, so gradient-norm clipping does not apply; clip is ${t.clip}${written ? '' : ' (the default)'}`, ctx.spanOf(written ? '/train/clip' : '/train/optimizer'), 'write clip 0 in the train block');
    }
  }
}

/** The patch model's own keys (Chen et al. 2022's setup): where they apply and what they combine with. */
function chenKeysCheck(p: Pipeline, ctx: Ctx): void {
  const t = p.train;
  const clusters = p.data[t.data]?.source.kind === 'clusters';
  const written = (ptr: string) => ctx.spans.has(ptr);
  const patchOnly = ['/train/routerOptimizer', '/train/fullBatch', '/model/moe/init', '/model/moe/initScale'];
  const moe = p.model.moe;
  if (!clusters) {
    for (const ptr of patchOnly.filter(written)) {
      ctx.error(`'${keyName(ptr.split('/').pop()!)}' applies only to the patch model of the cluster task (Chen et al. 2022); '${t.data}' is not source clusters`, ctx.spanOf(ptr), 'remove it, or train on a data set with source clusters');
    }
    // A language model's router parameters: a learned or cosine router's (frozen, random, label and hash train none).
    const untrained = !moe ? 'a dense model has no router' : moe.dispatch === 'soft' ? 'Soft MoE has no router' : !['learned', 'cosine'].includes(moe.router) ? `a ${moe.router} router has no trained parameters` : null;
    for (const [ptr, value] of [['/train/routerLr', t.routerLr], ['/train/routerWd', t.routerWd]] as const) {
      if (untrained && written(ptr) && value !== null && value !== undefined) ctx.error(`'${keyName(ptr.split('/').pop()!)}' has nothing to train: ${untrained}`, ctx.spanOf(ptr), 'remove it for this model (in a sweep zip, write none for the models without a trained router)');
    }
    if (t.optimizer === 'adam' && written('/train/routerWd') && t.routerWd !== null && t.routerWd !== undefined) ctx.error(`'router-wd' is a decoupled weight decay; optimizer adam has none`, ctx.spanOf('/train/routerWd'), 'use optimizer adamw, or remove router-wd');
    return;
  }
  if (written('/train/routerWd') && t.routerWd !== null && t.routerWd !== undefined) ctx.error(`'router-wd' is not lowered for the patch model of the cluster task; its router decays with wd`, ctx.spanOf('/train/routerWd'), 'remove router-wd');
  const noRouter = !moe || moe.experts <= 1 ? 'the single model (experts 1) has no router' : moe.router === 'frozen' ? 'a frozen router is never trained' : null;
  for (const [ptr, value] of [['/train/routerLr', t.routerLr], ['/train/routerOptimizer', t.routerOptimizer]] as const) {
    if (noRouter && written(ptr) && value !== null && value !== undefined) ctx.error(`'${keyName(ptr.split('/').pop()!)}' has nothing to train: ${noRouter}`, ctx.spanOf(ptr), 'remove it for this model (in a sweep zip, write none for the models without a trained router)');
  }
  if (t.fullBatch && written('/train/batch')) {
    ctx.error(`'batch' does not apply with full-batch true: every step uses the whole training split`, ctx.spanOf('/train/batch'), 'remove batch, or write full-batch false');
  }
}

export function validatePipeline(p: Pipeline, ctx: Ctx): void {
  const before = ctx.diagnostics.length;
  schemaCheck(p, ctx);
  // Semantic checks assume the schema holds for the fields they read; they guard their own types.
  void before;
  semanticCheck(p, ctx);
}
