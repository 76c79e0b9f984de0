// The `sweep { ... }` block: dimensions, seeds, dense baselines, comparisons.
import { typed } from './schema-builders.js';

const sweepValue = typed({ type: 'string', description: 'The value as written in the .moe file.' });

export const sweepSchema = typed({
  type: ['object', 'null'],
  description: 'Trials to run: `sweep { ... }`. Dimensions multiply (product) in the order written; a `zip` block pairs values; `when` makes a dimension conditional; `seeds` repeats every trial; `baseline` adds dense models matched on parameter count.',
  additionalProperties: false,
  required: ['dimensions', 'seeds', 'baselines', 'comparisons'],
  properties: {
    dimensions: {
      type: 'array',
      description: 'One per product line or zip block.',
      'x-syntax': 'PATH in [V1, V2, ...] [when PATH ==|!= VALUE]  |  zip { PATH in [...]  PATH in [...] }',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['kind', 'params', 'when'],
        properties: {
          kind: { type: 'string', enum: ['product', 'zip'], description: 'A single swept path, or several paths paired element-wise.' },
          params: {
            type: 'array',
            items: {
              type: 'object', additionalProperties: false, required: ['path', 'values'],
              properties: {
                path: { type: 'string', description: 'Dotted path of a field: `model.moe.top`, `train.lr`, `data.wiki.context` (`data.KEY` sets every data set).' },
                values: { type: 'array', items: sweepValue, minItems: 1 },
              },
            },
          },
          when: {
            type: ['object', 'null'],
            description: 'Expand this dimension only in trials where PATH compares equal (==) or unequal (!=) to VALUE; other trials keep the base value.',
            properties: { path: { type: 'string' }, op: { type: 'string', enum: ['==', '!='] }, value: sweepValue },
          },
        },
      },
    },
    seeds: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 4294967295 }, description: 'Seeds to repeat each trial with (`seeds 3` means [1, 2, 3]; empty: the train seed only).', 'x-syntax': 'seeds N | seeds [S1, S2, ...]' },
    baselines: {
      type: 'array',
      items: { type: 'string', enum: ['total', 'active'] },
      description: 'Dense baselines added for every MoE trial: the same model without experts, its FFN hidden width solved so that its parameter count equals the MoE model\'s total or active count. Width, layers and heads are kept; only the FFN width changes.',
      'x-syntax': 'baseline dense same total[, same active]',
    },
    comparisons: {
      type: 'array',
      description: 'Effects the report states first, each with its 95% interval over seeds: the swept values of PATH (or `baseline`) against VALUE (default: the first value), paired by seed with every other setting fixed, one row per combination of the `by` paths and the rest averaged over. Without `compare` the report still gives every dimension\'s effects.',
      'x-syntax': 'compare PATH [against VALUE] [by PATH, PATH ...]',
      items: {
        type: 'object', additionalProperties: false, required: ['path', 'reference', 'by'],
        properties: {
          path: { type: 'string' },
          reference: { type: ['string', 'null'] },
          by: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
});
