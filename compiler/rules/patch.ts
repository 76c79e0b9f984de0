// Semantic rules of the patch model of the cluster task (Chen et al. 2022): the keys of the
// transformer and of token routing that do not apply to it, and its own keys, which apply to it
// alone. The values of its keys that it cannot lower are lower-patch.ts's.
import { keyName } from '../frontend/schema.js';
import type { Pipeline } from '../frontend/types.js';
import { no, rule } from './rule.js';

const onClusters = (p: Pipeline) => p.data[p.train.data]?.source.kind === 'clusters';
const set = (v: unknown) => v !== null && v !== undefined;
const last = (ptr: string) => keyName(ptr.split('/').pop()!);
const patchHint = 'the patch model takes ffn (filters per expert) and moe { experts, top 1, router learned|frozen, noise, noise-dist, balance, zloss, expert, activation }';
const nothingHint = 'remove it for this model (in a sweep zip, write none for the models without a trained router)';

export const patchRules = [
  // The cluster task trains the patch model, not a transformer: settings of the transformer or of
  // token routing would be silently meaningless there, so they are refused.
  rule({
    code: 'patch.transformer-key', node: 'patch', phase: 'semantic',
    check({ config: p, written }) {
      if (!onClusters(p)) return null;
      return ['layers', 'width', 'heads', 'dropout'].filter((k) => written(`/model/${k}`))
        .map((k) => no(`/model/${k}`, `'${keyName(k)}' does not apply to the patch model of the cluster task (Chen et al. 2022)`, patchHint));
    },
  }),
  rule({
    code: 'patch.routing-key', node: 'patch', phase: 'semantic',
    check({ config: p, written }) {
      if (!onClusters(p)) return null;
      return ['every', 'unit', 'prefix', 'scope', 'capacity', 'second', 'dispatch', 'slots', 'dim', 'label', 'shared', 'expertWidth', 'sharedWidth', 'granularity', 'balanceOver'].filter((k) => written(`/model/moe/${k}`))
        .map((k) => no(`/model/moe/${k}`, `'${keyName(k)}' does not apply to the patch model of the cluster task (Chen et al. 2022): it routes each whole sample to one expert`, patchHint));
    },
  }),
  rule({
    code: 'patch.key-outside-patch-model', node: 'patch', phase: 'semantic',
    check({ config: p, written }) {
      if (onClusters(p)) return null;
      return ['/train/routerOptimizer', '/train/fullBatch', '/model/moe/init', '/model/moe/initScale'].filter(written)
        .map((ptr) => no(ptr, `'${last(ptr)}' applies only to the patch model of the cluster task (Chen et al. 2022); '${p.train.data}' is not source clusters`, 'remove it, or train on a data set with source clusters'));
    },
  }),
  rule({
    code: 'train.router-rate-untrained', node: 'train', phase: 'semantic',
    check({ config: p, written }) {
      const t = p.train;
      const moe = p.model.moe;
      // A language model's router parameters: a learned or cosine router's (frozen, random, label and hash train none);
      // the patch model's: any router but a frozen one, when there are several experts.
      const untrained = onClusters(p)
        ? (!moe || moe.experts <= 1 ? 'the single model (experts 1) has no router' : moe.router === 'frozen' ? 'a frozen router is never trained' : null)
        : (!moe ? 'a dense model has no router' : moe.dispatch === 'soft' ? 'Soft MoE has no router' : !['learned', 'cosine'].includes(moe.router) ? `a ${moe.router} router has no trained parameters` : null);
      if (!untrained) return null;
      const keys = onClusters(p) ? [['/train/routerLr', t.routerLr], ['/train/routerOptimizer', t.routerOptimizer]] as const : [['/train/routerLr', t.routerLr], ['/train/routerWd', t.routerWd]] as const;
      return keys.filter(([ptr, v]) => written(ptr) && set(v)).map(([ptr]) => no(ptr, `'${last(ptr)}' has nothing to train: ${untrained}`, nothingHint));
    },
  }),
  rule({
    code: 'train.router-wd-under-adam', node: 'train', phase: 'semantic',
    check({ config: p, written }) {
      return !onClusters(p) && p.train.optimizer === 'adam' && written('/train/routerWd') && set(p.train.routerWd)
        ? no('/train/routerWd', `'router-wd' is a decoupled weight decay; optimizer adam has none`, 'use optimizer adamw, or remove router-wd') : null;
    },
  }),
  rule({
    code: 'patch.router-wd', node: 'patch', phase: 'semantic',
    check({ config: p, written }) {
      return onClusters(p) && written('/train/routerWd') && set(p.train.routerWd)
        ? no('/train/routerWd', `'router-wd' is not lowered for the patch model of the cluster task; its router decays with wd`, 'remove router-wd') : null;
    },
  }),
  rule({
    code: 'patch.batch-with-full-batch', node: 'patch', phase: 'semantic',
    check({ config: p, written }) {
      return onClusters(p) && p.train.fullBatch && written('/train/batch')
        ? no('/train/batch', `'batch' does not apply with full-batch true: every step uses the whole training split`, 'remove batch, or write full-batch false') : null;
    },
  }),
  // NGD normalises each expert's gradient block of the patch model; a language model has no such
  // blocks defined for it, and global-norm clipping would be a no-op or a silent rescale.
  rule({
    code: 'train.ngd-outside-patch-model', node: 'train', phase: 'semantic',
    check({ config: p }) {
      const td = p.data[p.train.data];
      return p.train.optimizer === 'ngd' && td && td.source.kind !== 'clusters'
        ? no('/train/optimizer', `optimizer ngd (normalised gradient descent per expert, Chen et al. 2022) is implemented for the patch model of the cluster task only; '${td.name}' is source ${td.source.kind}`, 'use optimizer adamw, adam or sgd for language models') : null;
    },
  }),
  rule({
    code: 'train.ngd-with-clip', node: 'train', phase: 'semantic',
    check({ config: p, written }) {
      const t = p.train;
      if (t.optimizer !== 'ngd' || !onClusters(p) || !(typeof t.clip === 'number' && t.clip > 0)) return null;
      const w = written('/train/clip');
      return no(w ? '/train/clip' : '/train/optimizer', `optimizer ngd normalises each expert's gradient, so gradient-norm clipping does not apply; clip is ${t.clip}${w ? '' : ' (the default)'}`, 'write clip 0 in the train block');
    },
  }),
] as const;
