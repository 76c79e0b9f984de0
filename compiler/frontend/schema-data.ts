// The `data NAME { ... }` block: where the text comes from, how it is cut, and the synthetic cluster task.
import { builtinCorpora, corpusNames, sourceKinds } from './corpora.js';
import { enm, int, keysOf, num, optionalInCodeKeys, range, typed } from './schema-builders.js';

// Keys of the cluster task that Chen et al. 2022's setup needs (issue 16), kept in their own blocks.
const chenSyntheticKeys = optionalInCodeKeys({
  centre: range('Range of the cluster-centre signal b: the patch b·c_k (Chen et al.: U(1, 2)).', [0.5, 2]),
  scale: num('Factor every patch is multiplied by after it is drawn (Chen et al.: 10).', 1, { exclusiveMinimum: 0, maximum: 1e6 }),
  seed: int('Seed of the data set (its directions and samples), separate from `train.seed` (initialisation, batches, router noise): every trial sees the same data set unless this is swept. `none`: the trial\'s `train.seed`, so each seed of a sweep draws its own data set.', 0, 0, { maximum: 4294967295, type: ['integer', 'null'], 'x-syntax': 'SEED | none' }),
});

export const dataSchema = typed({
  type: 'object',
  description: 'A named data set: `data NAME { ... }`. Several may be defined; `train` trains on one, `evaluate` may use any.',
  additionalProperties: false,
  required: ['name', 'source', 'tokenizer', 'context', 'valid', 'limit', 'text', 'label', 'labels', 'vocab', 'synthetic'],
  properties: {
    name: { type: 'string', description: 'The data set name, from `data NAME`.', 'x-derived': true },
    source: {
      type: 'object',
      'x-form': 'source',
      description:
        `Where the text comes from. Builtin corpora: ${corpusNames.map((n) => `\`${n}\` (${builtinCorpora[n].about})`).join(', ')}. ` +
        'Files: `text "PATH"` (no label), `folder "PATH"` (one sub-folder per label value), ' +
        '`jsonl "PATH"` and `parquet "PATH"` (text and label fields, see `text` and `label`). Synthetic: `clusters` (the cluster task of Chen et al. 2022, label `cluster`; see `synthetic`).',
      'x-syntax': 'CORPUS [LANG, ...] | text "PATH" | folder "PATH" | jsonl "PATH" | parquet "PATH" | clusters',
      additionalProperties: false,
      required: ['kind', 'languages', 'path'],
      properties: {
        kind: { type: 'string', enum: sourceKinds, description: 'The source kind.' },
        languages: { type: 'array', items: { type: 'string' }, description: 'Languages of a multilingual corpus; empty means all.' },
        path: { type: ['string', 'null'], description: 'File or folder of a file source, relative to the .moe file.' },
      },
    },
    tokenizer: enm(['gpt2', 'bytes'], 'Tokenizer: GPT-2 BPE (vocabulary 50257) or raw bytes (vocabulary 256).', 'gpt2'),
    context: int('Sequence length in tokens (for `clusters`: ignored). The embedding kernel takes at most 65,535 tokens per micro-batch, so `batch` x `context` must stay within 65,535 (`moec compile` says so).', 128, 1, { maximum: 65535 }),
    valid: num('Fraction of the data held out for validation. 0 leaves no validation split, so nothing may evaluate on it.', 0.1, { minimum: 0, exclusiveMaximum: 1, 'x-units': ['percent'], 'x-syntax': 'FRACTION | PERCENT%' }),
    limit: int('Use at most this many characters of text (0: all). Handy for small presets.', 0, 0, { maximum: 1e12 }),
    text: { type: 'string', description: 'Name of the text field of a `jsonl` or `parquet` source.', default: 'text', 'x-applies': ['jsonl', 'parquet'] },
    label: {
      type: ['string', 'null'],
      description: 'Name of the label field of a `jsonl` or `parquet` source, or the label name given to the sub-folders of a `folder` source (default `folder`).',
      default: null,
      'x-applies': ['jsonl', 'parquet', 'folder'],
    },
    labels: { type: 'array', items: { type: 'string' }, description: 'Labels the data carries (derived from the source).', 'x-derived': true },
    vocab: { type: 'integer', description: 'Vocabulary size (derived from the tokenizer; 0 for `clusters`).', 'x-derived': true },
    synthetic: {
      type: 'object',
      'x-form': 'block',
      'x-applies': ['clusters'],
      description: 'Parameters of the synthetic cluster task (Chen et al. 2022): each sample is PATCHES patches of dimension DIM; one patch carries the label signal (`feature`), one the cluster centre (`centre`), one another cluster\'s feature (`distractor`), the rest Gaussian noise (`noise`); every patch is then multiplied by `scale`.',
      'x-syntax': 'synthetic { clusters 4  patches 4  dim 50 ... }',
      additionalProperties: false,
      required: ['clusters', 'patches', 'dim', 'noise', 'feature', 'distractor', 'samples', ...keysOf(chenSyntheticKeys)],
      default: {},
      properties: {
        clusters: int('Number of clusters (the experts should specialise one per cluster).', 4, 2, { maximum: 1024 }),
        patches: int('Patches per sample.', 4, 2, { maximum: 1024 }),
        dim: int('Dimension of each patch.', 50, 1, { maximum: 65536 }),
        noise: num('Standard deviation of each coordinate of the Gaussian noise patch (Chen et al. write N(0, (s/√d)²): noise = s/√dim, e.g. 0.1414 for s = 1 and dim 50).', 0.1, { minimum: 0, maximum: 1000 }),
        feature: range('Range of the label signal a: the patch y·a·v_k (Chen et al.: U(0.5, 2)).', [0.5, 2]),
        distractor: range('Range of the distractor signal g: the patch e·g·v_k\' with another cluster k\' and a random sign e (Chen et al.: U(0.5, 3) in settings 1 and 2, U(0.5, 2) in 3 and 4).', [0.5, 2]),
        samples: int('Number of generated samples (training and validation together).', 16000, 2, { maximum: 10_000_000 }),
        ...chenSyntheticKeys,
      },
    },
  },
});
