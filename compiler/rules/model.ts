// Semantic rules of the model block and its moe block: checks that need several fields at once.
import { didYouMean, } from '../../grammar/diagnostics.js';
import { keyName } from '../frontend/schema.js';
import { type Finding, no, rule } from './rule.js';

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

export const modelRules = [
  rule({
    code: 'model.heads-divide-width', node: 'model', phase: 'semantic',
    check({ config: { model: m } }) {
      if (!(isInt(m.width) && isInt(m.heads) && m.heads > 0 && m.width % m.heads !== 0)) return null;
      const ok = [1, 2, 4, 8, 16, 32].filter((h) => m.width % h === 0);
      return no('/model/heads', `heads (${m.heads}) must divide width (${m.width})`, `heads that divide ${m.width}: ${ok.join(', ')}`);
    },
  }),
  rule({
    code: 'moe.top-over-experts', node: 'moe', phase: 'semantic',
    check({ config: { model: { moe } } }) {
      return moe && moe.dispatch === 'sparse' && isInt(moe.top) && isInt(moe.experts) && moe.top > moe.experts
        ? no('/model/moe/top', `top-k (${moe.top}) exceeds the number of experts (${moe.experts})`, `top can be at most ${moe.experts}`) : null;
    },
  }),
  rule({
    code: 'moe.every-over-layers', node: 'moe', phase: 'semantic',
    check({ config: { model: m } }) {
      const moe = m.moe;
      return moe && isInt(moe.every) && isInt(m.layers) && moe.every > m.layers
        ? no('/model/moe/every', `moe every ${moe.every}, but the model has only ${m.layers} layer${m.layers === 1 ? '' : 's'}: no layer would have experts`) : null;
    },
  }),
  rule({
    code: 'moe.prefix-needs-sequence', node: 'moe', phase: 'semantic',
    check({ config: { model: { moe } } }) {
      return moe && moe.prefix !== null && moe.unit !== 'sequence' ? no('/model/moe/prefix', `prefix applies only to sequence routing`, `write: unit sequence(prefix ${moe.prefix})`) : null;
    },
  }),
  rule({
    code: 'moe.prefix-over-context', node: 'moe', phase: 'semantic',
    check({ config: { model: m } }) {
      const moe = m.moe;
      return moe && moe.prefix !== null && moe.unit === 'sequence' && isInt(m.context) && m.context > 0 && moe.prefix > m.context
        ? no('/model/moe/prefix', `routing prefix (${moe.prefix}) is longer than the context (${m.context})`) : null;
    },
  }),
  rule({
    code: 'moe.label-router-needs-label', node: 'router', phase: 'semantic',
    check({ config: p }) {
      const moe = p.model.moe;
      return moe && moe.router === 'label' && moe.label === null
        ? no('/model/moe/router', `a label router needs the label that picks the expert`, `write: router label(${p.data[p.train.data]?.labels[0] ?? 'language'})`) : null;
    },
  }),
  rule({
    code: 'moe.label-not-in-data', node: 'router', phase: 'semantic',
    check({ config: p }) {
      const moe = p.model.moe;
      const d = p.data[p.train.data];
      if (!moe || moe.router !== 'label' || moe.label === null || !d || d.labels.includes(moe.label)) return null;
      return no('/model/moe/label', `router label(${moe.label}) needs a label the training data '${d.name}' has${didYouMean(moe.label, d.labels)}`,
        d.labels.length ? `'${d.name}' carries: ${d.labels.join(', ')}` : `'${d.name}' (source ${d.source.kind}) carries no labels`);
    },
  }),
  rule({
    code: 'moe.label-applies-only', node: 'router', phase: 'semantic',
    check({ config: { model: { moe } } }) {
      return moe && moe.router !== 'label' && moe.label !== null ? no('/model/moe/label', `'label' applies only to 'router label(...)'`) : null;
    },
  }),
  rule({
    code: 'moe.sampled-needs-top2', node: 'moe', phase: 'semantic',
    check({ config: { model: { moe } } }) {
      return moe && moe.second === 'sampled' && isInt(moe.top) && moe.top !== 2 ? no('/model/moe/second', `'second sampled' (GShard) needs top 2, found top ${moe.top}`) : null;
    },
  }),
  rule({
    code: 'moe.shared-with-soft', node: 'moe', phase: 'semantic',
    check({ config: { model: { moe } } }) {
      return moe && isInt(moe.shared) && isInt(moe.experts) && moe.shared >= 1 && moe.dispatch === 'soft' ? no('/model/moe/shared', `shared experts do not combine with soft dispatch`) : null;
    },
  }),
  rule({
    code: 'moe.expert-choice-not-causal', node: 'moe', phase: 'semantic',
    check({ config: { model: { moe } } }) {
      if (!moe || moe.choice !== 'expert' || moe.dispatch === 'soft') return null;
      // An expert ranks all tokens of its group, later ones included: token t's routing depends on
      // the future, so a causal language model's perplexity gains information it could not have.
      const over = moe.choiceGroup === 'sequence' ? 'its sequence' : 'the micro-batch';
      return {
        severity: 'warning', ptr: '/model/moe/choice',
        message: `expert choice is not causal: each expert picks its tokens among all tokens of ${over}, so whether token t gets an expert depends on the scores of later tokens (it sees later tokens), and its validation perplexity is not a valid causal language-model number`,
        hint: 'compare it with causal (token-choice or dense) models only with this caveat; choice expert(sequence) confines the leak to the token\'s own sequence',
      };
    },
  }),
  rule({
    code: 'moe.linear-expert-width', node: 'moe', phase: 'semantic',
    check({ config: { model: { moe } }, written }) {
      // Linear experts are one width × width map: there is no hidden width to set or split.
      if (!moe || moe.expert !== 'linear') return null;
      return (['expertWidth', 'granularity'] as const).filter((k) => written(`/model/moe/${k}`) && moe[k] !== null && moe[k] !== 1)
        .map((k) => no(`/model/moe/${k}`, `'${keyName(k)}' sets the hidden width of MLP experts; linear experts (expert linear) have none`, `remove ${keyName(k)}, or use expert mlp`));
    },
  }),
  rule({
    code: 'moe.shared-width-without-shared', node: 'moe', phase: 'semantic',
    check({ config: { model: { moe } } }) {
      return moe && moe.sharedWidth != null && moe.shared === 0
        ? no('/model/moe/sharedWidth', `'shared-width' sets the width of shared experts, but the model has none (shared 0)`, 'add e.g. shared 1, or remove shared-width') : null;
    },
  }),
  rule({
    code: 'moe.soft-not-causal', node: 'moe', phase: 'semantic',
    check({ config: { model: { moe } } }): Finding | null {
      // Soft MoE mixes every token of a sequence into each slot: a language model's token t then
      // sees tokens after t through its FFN, and its perplexity is not a causal-LM number.
      return moe && moe.dispatch === 'soft' ? {
        severity: 'warning', ptr: '/model/moe/dispatch',
        message: `Soft MoE is not causal: each token's output mixes slots computed from all tokens of its sequence, later tokens included, so its validation perplexity is not a valid causal language-model number`,
        hint: 'compare it with causal (sparse or dense) models only with this caveat; top, capacity and balance do not apply to dispatch soft and are ignored',
      } : null;
    },
  }),
] as const;
