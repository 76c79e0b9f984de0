// Semantic rules of the data sets, the training schedule and sampling, and the evaluations.
import { didYouMean } from '../../grammar/diagnostics.js';
import { corpusLanguages } from '../frontend/corpora.js';
import { dataSchema, keyName } from '../frontend/schema.js';
import { type Finding, no, rule } from './rule.js';

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

export const dataRules = [
  rule({
    code: 'data.language-unknown', node: 'data', phase: 'semantic',
    check({ config: p }) {
      return Object.values(p.data).flatMap((d) => {
        const langs = corpusLanguages(d.source.kind);
        if (!langs) return [];
        return d.source.languages.flatMap((l, i) => langs.includes(l) ? [] : [no(`/data/${d.name}/source/languages/${i}`, `corpus '${d.source.kind}' has no language '${l}'${didYouMean(l, langs)}`, `languages: ${langs.join(', ')}`)]);
      });
    },
  }),
  rule({
    code: 'data.language-twice', node: 'data', phase: 'semantic',
    check({ config: p }) {
      return Object.values(p.data).flatMap((d) => {
        if (!corpusLanguages(d.source.kind)) return [];
        const seen = new Set<string>();
        return d.source.languages.flatMap((l, i) => {
          const twice = seen.has(l);
          seen.add(l);
          return twice ? [no(`/data/${d.name}/source/languages/${i}`, `language '${l}' is listed twice`)] : [];
        });
      });
    },
  }),
  rule({
    code: 'data.key-not-for-source', node: 'data', phase: 'semantic',
    check({ config: p, written }) {
      return Object.values(p.data).flatMap((d) => Object.entries(dataSchema.properties ?? {}).flatMap(([prop, ps]) => {
        const applies = ps['x-applies'];
        if (!applies || applies.includes(d.source.kind) || !written(`/data/${d.name}/${prop}`)) return [];
        return [no(`/data/${d.name}/${prop}`, `'${keyName(prop)}' applies only to source ${applies.join(' or ')}, not to source ${d.source.kind}`)];
      }));
    },
  }),
  rule({
    code: 'data.range-reversed', node: 'data', phase: 'semantic',
    check({ config: p }) {
      return Object.values(p.data).flatMap((d) => (['feature', 'centre', 'distractor'] as const).flatMap((r) => {
        const v = d.synthetic?.[r];
        return Array.isArray(v) && v.length === 2 && v[0]! > v[1]! ? [no(`/data/${d.name}/synthetic/${r}`, `'${r}' range [${v[0]}, ${v[1]}] is reversed: write [LOW, HIGH]`)] : [];
      }));
    },
  }),
  rule({
    code: 'train.warmup-over-steps', node: 'train', phase: 'semantic',
    check({ config: { train: t } }) {
      return isInt(t.warmup) && isInt(t.steps) && t.warmup > t.steps ? no('/train/warmup', `warmup (${t.warmup} steps) is longer than training (${t.steps} steps)`) : null;
    },
  }),
  rule({
    code: 'evaluate.every-over-steps', node: 'evaluate', phase: 'semantic',
    check({ config: p }): Finding | null {
      const t = p.train;
      return isInt(p.evaluate.every) && isInt(t.steps) && p.evaluate.every > t.steps
        ? { severity: 'warning', ptr: '/evaluate/every', message: `evaluation every ${p.evaluate.every} steps, but training has ${t.steps}: it is evaluated only at the end` } : null;
    },
  }),
  rule({
    code: 'evaluate.empty-valid-split', node: 'evaluate', phase: 'semantic',
    check({ config: p, written }) {
      // An empty split would evaluate to loss 0 and perplexity 1.00: refuse it here, where it is written.
      const refs = [...(p.evaluate.perplexity ?? []).map((r, i) => ({ r, ptr: `/evaluate/perplexity/${i}` })), ...(p.evaluate.experts ?? []).map((r, i) => ({ r, ptr: `/evaluate/experts/${i}` }))];
      return refs.flatMap(({ r, ptr }) => {
        const d = p.data[r.data];
        if (!d || r.split !== 'valid' || d.valid !== 0) return [];
        const w = written(`${ptr}/data`);
        return [no(w ? `${ptr}/data` : `/data/${d.name}/valid`,
          `data set '${d.name}' has 'valid 0', so its valid split is empty and ${w ? 'this evaluation' : 'the default evaluation (perplexity on the training data\'s valid split)'} has nothing to measure`,
          `hold out some data (e.g. valid 5%)${w ? `, or evaluate on ${d.name}.train` : ''}`)];
      });
    },
  }),
  rule({
    code: 'train.balanced-needs-label', node: 'train', phase: 'semantic',
    check({ config: p }) {
      const t = p.train;
      return t.sample === 'balanced' && t.balanceBy === null
        ? no('/train/sample', `balanced sampling needs the label to balance`, `write: sample balanced(${p.data[t.data]?.labels[0] ?? 'language'})`) : null;
    },
  }),
  rule({
    code: 'train.balance-label-not-in-data', node: 'train', phase: 'semantic',
    check({ config: p }) {
      const t = p.train;
      const td = p.data[t.data];
      if (t.sample !== 'balanced' || t.balanceBy === null || !td || td.labels.includes(t.balanceBy)) return null;
      return no('/train/balanceBy', `sample balanced(${t.balanceBy}) needs a label the training data '${td.name}' has${didYouMean(t.balanceBy, td.labels)}`,
        td.labels.length ? `'${td.name}' carries: ${td.labels.join(', ')}` : `'${td.name}' (source ${td.source.kind}) carries no labels`);
    },
  }),
  rule({
    code: 'train.balanced-on-clusters', node: 'train', phase: 'semantic',
    check({ config: p }) {
      const t = p.train;
      const td = p.data[t.data];
      return t.sample === 'balanced' && t.balanceBy !== null && td?.labels.includes(t.balanceBy) && td.source.kind === 'clusters'
        ? no('/train/sample', `balanced sampling applies to text data; the cluster task draws samples uniformly`) : null;
    },
  }),
  rule({
    code: 'train.balance-by-applies-only', node: 'train', phase: 'semantic',
    check({ config: { train: t } }) {
      return t.sample !== 'balanced' && t.balanceBy !== null ? no('/train/balanceBy', `'balance-by' applies only to 'sample balanced(...)'`) : null;
    },
  }),
] as const;
