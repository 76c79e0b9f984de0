// The values the patch model of the cluster task (Chen et al. 2022) cannot lower, of keys that
// apply to it (keys that do not apply at all are patch.ts's semantic rules).
import type { Pipeline } from '../frontend/types.js';
import { type Finding, no, rule } from './rule.js';

const patchRule = <C extends string>(code: C, node: 'patch' | 'moe' | 'train', check: (c: Pipeline, m: NonNullable<Pipeline['model']['moe']>) => Finding | false | null) => rule({
  code, node, phase: 'lowering',
  check({ config: c }) {
    if (c.data[c.train.data]?.source.kind !== 'clusters' || !c.model.moe) return null;
    return check(c, c.model.moe) || null;
  },
});

export const lowerPatchRules = [
  rule({
    code: 'patch.needs-moe', node: 'patch', phase: 'lowering',
    check: ({ config: c }) => c.data[c.train.data]?.source.kind === 'clusters' && !c.model.moe
      ? no('/model', 'the patch model of the cluster task is set by a moe block (its experts and router)', 'add moe { experts 1  top 1 ... } for the single model, or experts N for a mixture') : null,
  }),
  patchRule('patch.top', 'patch', (_c, m) => m.top !== 1 && no('/model/moe/top', `the patch model routes each sample to one expert; top ${m.top} is not lowered for it`, 'write top 1')),
  patchRule('patch.router', 'patch', (_c, m) => m.router !== 'learned' && m.router !== 'frozen' && no('/model/moe/router', `router '${m.router}' is not lowered for the patch model`, 'use router learned or router frozen')),
  patchRule('patch.gate', 'patch', (_c, m) => m.gate !== 'softmax-topk' && no('/model/moe/gate', `gate '${m.gate}' is not lowered for the patch model; its gate is the softmax probability of the chosen expert, as in the paper`, 'use gate softmax-topk')),
  patchRule('patch.normalize', 'patch', (_c, m) => m.normalize && m.experts > 1 && no('/model/moe/normalize', 'a renormalised top-1 gate is always 1, so the router would get no gradient', 'use normalize false')),
  patchRule('patch.accumulate', 'patch', (c) => c.train.accumulate !== 1 && no('/train/accumulate', 'gradient accumulation is not lowered for the patch model', 'use accumulate 1 and a larger batch')),
  patchRule('patch.precision', 'patch', (c) => c.train.precision !== 'f32' && no('/train/precision', `precision '${c.train.precision}' is not implemented; plans are f32`, 'use precision f32')),
] as const;
