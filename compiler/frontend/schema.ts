// The JSON Schema of a resolved pipeline: the contract with the rest of the compiler, the
// validator of every resolved trial (ajv), and the reference of every field of the language
// (docs/LANGUAGE.md is generated from it by compiler/frontend/docs.ts; nothing is written twice).
//
// The language mirrors this schema: a block's keys are the kebab-case names of an object's
// properties (`min-lr` <-> `minLr`), nested blocks are nested objects (`moe { ... }`).
// Extension keywords (ignored by validation, read by the resolver and the docs):
//   x-syntax   how the value is written in a .moe file
//   x-form     how the resolver reads the value: block | call | capacity | ffn | source | evalref | ref
//   x-units    extra number forms accepted: percent (5% -> 0.05), steps-percent (warmup 5% of steps)
//   x-derived  computed by the resolver, not written by the user
//   x-repeat   the key may appear several times; each adds an element
//   x-call     for x-form call: which call arguments set which sibling keys
//   x-default-text  a default that depends on other fields, in words
//   x-applies  the data source kinds a data key applies to
import { builtinCorpora, corpusNames, sourceKinds } from './corpora.js';

export type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: readonly unknown[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  required?: string[];
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  'x-syntax'?: string;
  'x-form'?: string;
  'x-units'?: string[];
  'x-derived'?: boolean;
  'x-repeat'?: boolean;
  'x-call'?: { positional?: Record<string, string>; keys?: Record<string, string[]> };
  'x-default-text'?: string;
  'x-applies'?: string[];
  [k: string]: unknown;
};

const int = (description: string, dflt: number | null, min = 0, extra: Partial<JsonSchema> = {}): JsonSchema => ({
  type: dflt === null ? ['integer', 'null'] : 'integer', description, default: dflt, minimum: min, ...extra,
});
const num = (description: string, dflt: number, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'number', description, default: dflt, ...extra });
const enm = (values: readonly string[], description: string, dflt: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({
  type: 'string', enum: values, description, default: dflt, 'x-syntax': values.join(' | '), ...extra,
});
const bool = (description: string, dflt: boolean): JsonSchema => ({ type: 'boolean', description, default: dflt, 'x-syntax': 'true | false' });
const range = (description: string, dflt: [number, number]): JsonSchema => ({
  type: 'array', items: { type: 'number', minimum: 0, maximum: 1000 }, minItems: 2, maxItems: 2, description, default: dflt, 'x-syntax': '[LOW, HIGH]',
});


// Keys of the cluster task that Chen et al. 2022's setup needs (issue 16), kept in their own blocks.
const chenSyntheticKeys: Record<string, JsonSchema> = {
  centre: range('Range of the cluster-centre signal b: the patch b·c_k (Chen et al.: U(1, 2)).', [0.5, 2]),
  scale: num('Factor every patch is multiplied by after it is drawn (Chen et al.: 10).', 1, { exclusiveMinimum: 0, maximum: 1e6 }),
  seed: int('Seed of the data set (its directions and samples), separate from `train.seed` (initialisation, batches, router noise): every trial sees the same data set unless this is swept. `none`: the trial\'s `train.seed`, so each seed of a sweep draws its own data set.', 0, 0, { maximum: 4294967295, type: ['integer', 'null'], 'x-syntax': 'SEED | none' }),
};

export const dataSchema: JsonSchema = {
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
      required: ['clusters', 'patches', 'dim', 'noise', 'feature', 'distractor', 'samples', ...Object.keys(chenSyntheticKeys)],
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
};

// The patch model's experts (the cluster task only).
const chenMoeKeys: Record<string, JsonSchema> = {
  init: enm(['normal', 'fan-in'], 'Initialisation of the patch model\'s expert filters: `normal`: N(0, init-scale²); `fan-in`: U(−init-scale/√dim, init-scale/√dim), PyTorch\'s default for Conv1d (bound 1/√fan-in) times `init-scale` (Chen et al.: fan-in with init-scale 0.001). Cluster task only.', 'normal'),
  initScale: {
    type: ['number', 'null'], exclusiveMinimum: 0, maximum: 100, default: null,
    description: 'Scale of the expert filters\' initialisation (see `init`). Cluster task only.',
    'x-default-text': '0.1 for init normal, 1 for init fan-in (PyTorch\'s own default)',
  },
};

// Load balancing beyond the Switch loss (issue 18): DeepSeek-V3's auxiliary-loss-free bias and
// its sequence-wise balance loss.
const balancingMoeKeys: Record<string, JsonSchema> = {
  biasRate: num('Auxiliary-loss-free balancing (Wang et al. 2024; DeepSeek-V3): rate γ of a per-expert bias added to the gate scores for the top-k selection only (the gates stay the unbiased scores); after each optimiser step b_i ← b_i + γ·sign(mean load − load_i), load_i the assignments to expert i in that step. Not trained (no gradient, no weight decay); saved in checkpoints. 0: off (the paper: 0.001). Scoring routers (learned, frozen, cosine) with sparse dispatch only.', 0, { minimum: 0, maximum: 10 }),
  balanceOver: enm(['batch', 'sequence'], 'Over which tokens the Switch balance loss (weight `balance`) counts load. `batch`: f_i and P_i over all tokens of the micro-batch (Switch, GShard). `sequence`: DeepSeek-V3\'s complementary sequence-wise loss, the same form over the tokens of each sequence, averaged over the sequences: E · mean_b Σ_i f_b,i · P_b,i, with f_b,i the share of sequence b\'s context × top assignments that go to expert i and P_b,i the mean router score of expert i over b\'s tokens. It penalises a sequence that crowds into a few experts even when the micro-batch as a whole is balanced (e.g. each language or topic on experts of its own, which the batch loss allows): about 1 when every sequence spreads its tokens evenly, up to E when each sequence uses one expert. Each micro-batch\'s loss is weighted by `balance` / accumulate, as the batch loss is, so an optimiser step\'s loss is `balance` times the mean over all its sequences whatever the accumulation (the batch loss is not: its f and P are one micro-batch\'s). The balance figure of the log, view and metrics is then this loss. It acts on scoring routers (learned, frozen, cosine; a rule router has no balance loss either way) with token routing and sparse dispatch: refused with `unit sequence` (a sequence is one routing decision), expert choice (`balance` must be 0 there) and `dispatch soft`. Sweep it against the batch loss with `model.moe.balance-over in [batch, sequence]`.', 'batch'),
};

export const moeSchema: JsonSchema = {
  type: ['object', 'null'],
  'x-form': 'block',
  description: 'Makes the model a Mixture of Experts: every `every`-th feed-forward layer becomes a set of experts with a router. Leave it out for a dense model.',
  'x-syntax': 'moe { experts 8  top 2 ... }',
  default: null,
  additionalProperties: false,
  required: ['every', 'experts', 'top', 'unit', 'prefix', 'scope', 'router', 'label', 'dim', 'gate', 'normalize', 'noise', 'noiseDist', 'capacity', 'dropless', 'balance', 'zloss', 'shared', 'expertWidth', 'sharedWidth', 'granularity', 'expert', 'activation', 'second', 'dispatch', 'slots', 'layers', ...Object.keys(chenMoeKeys), ...Object.keys(balancingMoeKeys)],
  properties: {
    every: int('Every n-th layer is an MoE layer (layers n, 2n, ...; 1: all layers).', 1, 1, { maximum: 256 }),
    experts: int('Number of experts N per MoE layer.', 8, 1, { maximum: 1024 }),
    top: int('Number of active experts K per routing decision (1: Switch, 2: GShard/Mixtral). At most `experts`.', 2, 1, { maximum: 1024 }),
    unit: enm(['token', 'sequence'], 'Routing unit: each token picks its experts, or one decision per sequence from the mean-pooled hidden states at that layer. `sequence(prefix P)` routes on the mean of the first P tokens only (causal: the decision is known after P tokens).', 'token', {
      'x-form': 'call', 'x-call': { positional: { sequence: 'prefix' }, keys: { sequence: ['prefix'] } }, 'x-syntax': 'token | sequence | sequence(prefix P)',
    }),
    prefix: int('For sequence routing: pool only the first P tokens (null: the whole sequence).', null, 1, { maximum: 65535 }),
    scope: enm(['layer', 'global'], 'Routing scope: a router per MoE layer, or one decision shared by every MoE layer (made at the first MoE layer, or from the label for a label router).', 'layer'),
    router: enm(['learned', 'frozen', 'random', 'label', 'cosine', 'hash'], 'Router: learned (linear, trained), frozen (random init, never trained), random (uniform random assignment), label (expert chosen from a data label, e.g. the language), cosine (low-dim projection, L2-normalised, learned temperature), hash (Roller et al. 2021, Hash Layers: each token id goes to a fixed expert by a fixed random hash, the same for every trial, per MoE layer; with top K, K distinct hashed experts with gates 1/K; no router parameters; token routing only, no noise, z-loss or sampled second expert, and `balance` has nothing to act on).', 'learned', {
      'x-form': 'call', 'x-call': { positional: { label: 'label', cosine: 'dim' }, keys: { cosine: ['dim'], label: ['label'] } },
      'x-syntax': 'learned | frozen | random | label(LABEL) | cosine | cosine(dim D) | hash',
    }),
    label: { type: ['string', 'null'], description: 'For `router label(LABEL)`: the data label that picks the expert (label value i goes to expert i mod N). The training data must carry it.', default: null },
    dim: int('For `router cosine(dim D)`: dimension of the routing projection.', 32, 1, { maximum: 65536 }),
    gate: enm(['softmax-topk', 'topk-softmax', 'sigmoid'], 'Gate: softmax over all experts then keep the top k; top k logits then softmax over them; or an independent sigmoid per expert.', 'softmax-topk'),
    normalize: bool('Renormalise the kept top-k weights to sum to 1 (for softmax-topk and sigmoid).', false),
    noise: num('Scale of the noise added to router logits during training (noisy top-k; 0: none): the standard deviation of Gaussian noise, or the width of uniform noise (see `noise-dist`).', 0, { minimum: 0, maximum: 100 }),
    noiseDist: enm(['gaussian', 'uniform'], 'Distribution of the router noise: Gaussian N(0, noise²), or uniform U(0, noise) per logit (Chen et al. 2022).', 'gaussian'),
    capacity: num('Capacity factor: each expert takes at most capacity x (tokens x k / N) tokens, the rest are dropped (pass through the residual). `capacity dropless` sets `dropless`.', 1.25, {
      exclusiveMinimum: 0, maximum: 1024, 'x-form': 'capacity', 'x-syntax': 'FACTOR | dropless',
    }),
    dropless: bool('Never drop tokens (no capacity limit).', false),
    balance: num('Weight of the Switch load-balancing loss N * sum_i f_i * P_i (0: off).', 0.01, { minimum: 0, maximum: 100 }),
    zloss: num('Weight of the router z-loss (ST-MoE; 0: off).', 0, { minimum: 0, maximum: 100 }),
    shared: int('Number of shared experts every token always uses, in addition to the routed ones (DeepSeekMoE).', 0, 0, { maximum: 64 }),
    expertWidth: {
      type: ['integer', 'null'], minimum: 1, maximum: 1_048_576, default: null, 'x-units': ['ffn-fraction'],
      description: 'Hidden width of each routed expert (fine-grained experts, DeepSeekMoE): a fraction of the dense FFN width `ffn` (`0.25` or `25%`, rounded to the nearest unit) or an absolute width (a whole number, `96`). Independent of `shared-width` and of the dense layers\' `ffn`. Resolved to the absolute width, divided by `granularity`.',
      'x-syntax': 'FRACTION | PERCENT% | UNITS', 'x-default-text': 'ffn',
    },
    sharedWidth: {
      type: ['integer', 'null'], minimum: 1, maximum: 1_048_576, default: null, 'x-units': ['ffn-fraction'],
      description: 'Hidden width of each shared expert: a fraction of `ffn` (`0.25`, `25%`) or an absolute width. Not changed by `granularity` (DeepSeekMoE\'s shared experts are as wide as a fine-grained expert: write the same width as `expert-width`).',
      'x-syntax': 'FRACTION | PERCENT% | UNITS', 'x-default-text': 'ffn',
    },
    granularity: int('DeepSeekMoE\'s fine-grained split m: each routed expert is split into m experts of 1/m the width, and each token takes m times as many, so the experts\' weight matrices keep their total and active counts (`experts` × m, `top` × m, `expert-width` / m, which m must divide; the router and the experts\' output biases grow m-fold). Resolved into those keys; 1: no split.', 1, 1, { maximum: 64 }),
    expert: enm(['mlp', 'linear'], 'Expert kind: a two-layer MLP (width x ffn x width) or a single linear map.', 'mlp'),
    activation: enm(['gelu', 'relu', 'cubic'], 'Activation of MLP experts (cubic: x^3, as in Chen et al. 2022).', 'gelu'),
    second: enm(['top', 'sampled'], 'How the second expert is chosen when top is 2: the second-highest, or sampled in proportion to its weight (GShard).', 'top'),
    choice: enm(['token', 'expert'], 'Who chooses: each token its top-k experts (token choice), or each expert its top-c tokens by router score (expert choice, Zhou et al. 2022), c = ceil(capacity x G x k / experts) clamped to 1..G over a group of G tokens (see `choice-group`), so a token may get zero experts (it passes through the residual only) or several. The gate is the token\'s softmax (or sigmoid) score of the expert, not renormalised. Load is balanced by construction: `balance` must be 0; a learned, frozen or cosine router, token unit, capacity factor not dropless, `normalize` off, gate softmax-topk or sigmoid, no sampled second expert. Not causal: an expert\'s choice compares a token with later tokens of its group, so a token\'s routing depends on the future (`moec check` warns).', 'token', {
      'x-form': 'call', 'x-call': { positional: { expert: 'choiceGroup' }, keys: { expert: ['choiceGroup'] } }, 'x-syntax': 'token | expert | expert(sequence) | expert(batch)',
    }),
    choiceGroup: enm(['batch', 'sequence'], 'For `choice expert`: the tokens each expert chooses among: the whole micro-batch (batch x context tokens, the paper\'s form) or each sequence (context tokens; c per sequence). Either way a token\'s routing sees later tokens of its group.', 'batch'),
    dispatch: enm(['sparse', 'soft'], 'Sparse routing (tokens go to their top-k experts) or Soft MoE (every expert processes weighted mixes of all tokens, `slots` per expert).', 'sparse'),
    slots: int('Soft MoE: slots per expert.', 1, 1, { maximum: 1024 }),
    layers: { type: 'array', items: { type: 'integer' }, description: 'Indices (0-based) of the MoE layers.', 'x-derived': true },
    ...chenMoeKeys,
    ...balancingMoeKeys,
  },
};

export const modelSchema: JsonSchema = {
  type: 'object',
  description: 'A named GPT-2-style model: `model NAME { ... }` (pre-norm transformer, learned positions, tied embeddings). `train` uses one (its `model` key, or the only one defined).',
  additionalProperties: false,
  required: ['name', 'layers', 'width', 'heads', 'ffn', 'dropout', 'vocab', 'context', 'moe'],
  properties: {
    name: { type: 'string', description: 'The model name, from `model NAME`.', 'x-derived': true },
    layers: int('Number of transformer layers.', 4, 1, { maximum: 256 }),
    width: int('Hidden width (embedding dimension).', 256, 1, { maximum: 65536 }),
    heads: int('Attention heads; must divide `width`.', 4, 1, { maximum: 1024 }),
    ffn: {
      type: 'integer', minimum: 1, maximum: 1_048_576, 'x-form': 'ffn', 'x-units': ['multiplier'],
      description: 'Feed-forward hidden width (of each expert in MoE layers), as a multiple of `width` (`4x`) or an absolute number. Resolved to the absolute number.',
      'x-syntax': 'Nx | UNITS', 'x-default-text': '4x (4 x width)',
    },
    dropout: num('Dropout probability.', 0, { minimum: 0, exclusiveMaximum: 1, 'x-units': ['percent'] }),
    vocab: { type: 'integer', description: 'Vocabulary size (from the training data\'s tokenizer).', 'x-derived': true },
    context: { type: 'integer', description: 'Context length (from the training data).', 'x-derived': true },
    moe: moeSchema,
  },
};

// Training keys of the patch model (the cluster task only): the router's own rate and optimiser,
// and full-batch gradient descent, as Chen et al. 2022 train it.
const chenTrainKeys: Record<string, JsonSchema> = {
  routerLr: {
    type: ['number', 'null'], minimum: 0, maximum: 1e3, default: null,
    description: 'Peak learning rate of the router parameters (every router kind with trained parameters: learned, cosine; the patch model\'s router: Chen et al. use 0.1 with the experts at 1e-3); it follows the same schedule as `lr`, in proportion. 0 keeps the router at its initialisation while the rest trains.',
    'x-default-text': 'lr',
  },
  routerOptimizer: {
    type: ['string', 'null'], enum: ['sgd', 'adamw', null], default: null, 'x-syntax': 'sgd | adamw',
    description: 'Optimiser of the patch model\'s router: `sgd` (plain gradient descent, as Chen et al.) or `adamw` (with `betas`, `eps`, `wd`). Cluster task only.',
    'x-default-text': 'sgd under optimizer sgd or ngd, adamw under adamw (and under adam, without weight decay)',
  },
  routerWd: {
    type: ['number', 'null'], minimum: 0, maximum: 10, default: null,
    description: 'Decoupled weight decay of the router\'s weight matrices (optimizer adamw or sgd; a cosine router\'s temperature stays undecayed).',
    'x-default-text': 'wd',
  },
  fullBatch: bool('Full-batch gradient descent (Chen et al.): each step uses every training sample once, in order, instead of `batch` samples drawn with replacement; `batch` must then be left out. Cluster task only.', false),
};

export const trainSchema: JsonSchema = {
  type: 'object',
  description: 'How to train: `train { ... }`.',
  additionalProperties: false,
  required: ['data', 'model', 'steps', 'batch', 'accumulate', 'optimizer', 'lr', 'betas', 'eps', 'wd', 'schedule', 'warmup', 'minLr', 'clip', 'seed', 'precision', 'sample', 'balanceBy', ...Object.keys(chenTrainKeys)],
  properties: {
    data: { type: 'string', 'x-form': 'ref', description: 'The data set to train on.', 'x-syntax': 'DATA', 'x-default-text': 'the first data set defined' },
    model: { type: 'string', 'x-form': 'ref', description: 'The model to train.', 'x-syntax': 'MODEL', 'x-default-text': 'the only model defined' },
    steps: int('Optimizer steps.', 1000, 1, { maximum: 10_000_000 }),
    batch: int('Sequences per micro-batch.', 16, 1, { maximum: 65535 }),
    accumulate: int('Micro-batches accumulated per optimizer step (gradient accumulation).', 1, 1, { maximum: 1024 }),
    optimizer: enm(['adamw', 'adam', 'sgd', 'ngd'], 'Optimizer. `adamw`: Adam with decoupled weight decay; `adam`: Adam without weight decay (`wd` is not used); `sgd`: plain gradient descent p ← p − lr·(g + wd·p), g after `clip`. `ngd` (the cluster task\'s patch model only): normalised gradient descent as Chen et al. 2022 ("Towards Understanding Mixture of Experts in Deep Learning") train the experts: each expert\'s filters W_m ← W_m − lr·(g_m/‖g_m‖_F + wd·W_m), with g_m that expert\'s gradient and ‖g_m‖_F its own Frobenius norm (an expert whose gradient is zero, e.g. because no sample was routed to it, moves only by the weight decay); the learned router gets plain gradient descent (see `router-optimizer`, `router-lr`). Its `clip` is 0: the step\'s size is `lr` whatever the gradient\'s norm.', 'adamw'),
    lr: num('Peak learning rate.', 6e-4, { exclusiveMinimum: 0, maximum: 10 }),
    betas: { type: 'array', items: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, minItems: 2, maxItems: 2, default: [0.9, 0.95], description: 'Adam betas.', 'x-syntax': '[BETA1, BETA2]' },
    eps: num('Adam epsilon.', 1e-8, { exclusiveMinimum: 0, maximum: 1 }),
    wd: num('Decoupled weight decay.', 0.1, { minimum: 0, maximum: 10 }),
    schedule: enm(['constant', 'cosine', 'linear'], 'Learning-rate schedule after warmup: constant, cosine decay or linear decay to `min-lr`.', 'cosine'),
    warmup: int('Linear warmup steps; `5%` means 5% of `steps`.', 0, 0, { maximum: 10_000_000, 'x-units': ['steps-percent'], 'x-syntax': 'STEPS | PERCENT%' }),
    minLr: num('Final learning rate as a fraction of `lr`.', 0.1, { minimum: 0, maximum: 1, 'x-units': ['percent'] }),
    clip: num('Global gradient-norm clipping threshold (0: off).', 1, { minimum: 0, maximum: 1e6, 'x-default-text': '1; 0 under optimizer ngd (which normalises each expert\'s gradient, so clipping does not apply)' }),
    seed: int('Random seed (initialisation, data order, router noise).', 1, 0, { maximum: 4294967295 }),
    precision: enm(['f32', 'f16'], 'Precision of activations and matmuls (f16 needs the shader-f16 feature).', 'f32'),
    sample: enm(['uniform', 'balanced'], 'How training windows are drawn: uniformly over the training tokens, or `balanced(LABEL)`: each window first draws a value of LABEL uniformly (e.g. each language equally often, whatever its size), then a position within that value\'s documents.', 'uniform', {
      'x-form': 'call', 'x-call': { positional: { balanced: 'balanceBy' }, keys: { balanced: ['balanceBy'] } }, 'x-syntax': 'uniform | balanced(LABEL)',
    }),
    balanceBy: { type: ['string', 'null'], description: 'For `sample balanced(LABEL)`: the label whose values are drawn equally often. The training data must carry it.', default: null },
    ...chenTrainKeys,
  },
};

const evalRef = (description: string, withLabel: boolean): JsonSchema => ({
  type: 'array',
  'x-repeat': true,
  'x-form': 'evalref',
  description,
  'x-syntax': withLabel ? 'DATA[.SPLIT] by LABEL' : 'DATA[.SPLIT]',
  items: {
    type: 'object',
    additionalProperties: false,
    required: withLabel ? ['data', 'split', 'label'] : ['data', 'split'],
    properties: {
      data: { type: 'string', description: 'Data set name.' },
      split: { type: 'string', enum: ['train', 'valid'], description: 'Split (default valid).' },
      ...(withLabel ? { label: { type: 'string', description: 'Label to group by.' } } : {}),
    },
  },
});

export const evaluateSchema: JsonSchema = {
  type: 'object',
  description: 'What to measure and when: `evaluate { ... }`.',
  additionalProperties: false,
  required: ['every', 'batches', 'perplexity', 'experts', 'average'],
  properties: {
    every: int('Evaluate every n optimizer steps (and at the end).', 100, 1, { maximum: 10_000_000 }),
    batches: int('Validation batches per evaluation.', 8, 1, { maximum: 10_000 }),
    perplexity: { ...evalRef('Validation perplexity on a data set split; one line each.', false), 'x-default-text': 'the training data\'s valid split' },
    experts: { ...evalRef('Expert assignment per MoE layer on a data split, grouped by a label the data carries (the heat maps); one line each.', true), default: [] },
    average: int('Report the mean of the last M evaluations (smooths the final numbers).', 1, 1, { maximum: 1000 }),
  },
};

const sweepValue: JsonSchema = { type: 'string', description: 'The value as written in the .moe file.' };

export const sweepSchema: JsonSchema = {
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
};

export const pipelineSchema: JsonSchema = {
  $id: 'https://moec.dev/schema/pipeline.json',
  type: 'object',
  description: 'A resolved .moe pipeline: every default filled, every reference checked, every unit normalised.',
  additionalProperties: false,
  required: ['version', 'preset', 'data', 'model', 'train', 'evaluate', 'sweep'],
  properties: {
    version: { type: 'integer', enum: [1], description: 'Format version of the resolved pipeline.' },
    preset: { type: ['string', 'null'], description: 'The preset applied (`--preset NAME`), if any.' },
    data: { type: 'object', additionalProperties: dataSchema, description: 'Data sets by name.' },
    model: modelSchema,
    train: trainSchema,
    evaluate: evaluateSchema,
    sweep: sweepSchema,
  },
};

/** kebab-case language key -> camelCase property name. */
export function propName(key: string): string {
  return key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
/** camelCase property name -> kebab-case language key. */
export function keyName(prop: string): string {
  return prop.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Language keys of a block schema (properties that the user may write). */
export function blockKeys(s: JsonSchema): string[] {
  return Object.entries(s.properties ?? {}).filter(([, p]) => !p['x-derived']).map(([k]) => keyName(k));
}

/** The schema of each top-level block kind. */
export const blockSchemas: Record<'data' | 'model' | 'train' | 'evaluate', JsonSchema> = {
  data: dataSchema,
  model: modelSchema,
  train: trainSchema,
  evaluate: evaluateSchema,
};

export function schemaDefault(s: JsonSchema): unknown {
  return s.default === undefined ? undefined : structuredClone(s.default);
}
