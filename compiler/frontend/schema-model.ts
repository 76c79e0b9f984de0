// The `model NAME { ... }` block and its `moe { ... }` block.
import { bool, enm, int, keysOf, num, optionalInCode, optionalInCodeKeys, typed } from './schema-builders.js';

// The patch model's experts (the cluster task only).
const chenMoeKeys = optionalInCodeKeys({
  init: enm(['normal', 'fan-in'], 'Initialisation of the patch model\'s expert filters: `normal`: N(0, init-scale²); `fan-in`: U(−init-scale/√dim, init-scale/√dim), PyTorch\'s default for Conv1d (bound 1/√fan-in) times `init-scale` (Chen et al.: fan-in with init-scale 0.001). Cluster task only.', 'normal'),
  initScale: {
    type: ['number', 'null'], exclusiveMinimum: 0, maximum: 100, default: null,
    description: 'Scale of the expert filters\' initialisation (see `init`). Cluster task only.',
    'x-default-text': '0.1 for init normal, 1 for init fan-in (PyTorch\'s own default)',
  },
});

// Load balancing beyond the Switch loss (issue 18): DeepSeek-V3's auxiliary-loss-free bias and
// its sequence-wise balance loss.
const balancingMoeKeys = optionalInCodeKeys({
  biasRate: num('Auxiliary-loss-free balancing (Wang et al. 2024; DeepSeek-V3): rate γ of a per-expert bias added to the gate scores for the top-k selection only (the gates stay the unbiased scores); after each optimiser step b_i ← b_i + γ·sign(mean load − load_i), load_i the assignments to expert i in that step. Not trained (no gradient, no weight decay); saved in checkpoints. 0: off (the paper: 0.001). Scoring routers (learned, frozen, cosine) with sparse dispatch only.', 0, { minimum: 0, maximum: 10 }),
  balanceOver: enm(['batch', 'sequence'], 'Over which tokens the Switch balance loss (weight `balance`) counts load. `batch`: f_i and P_i over all tokens of the micro-batch (Switch, GShard). `sequence`: DeepSeek-V3\'s complementary sequence-wise loss, the same form over the tokens of each sequence, averaged over the sequences: E · mean_b Σ_i f_b,i · P_b,i, with f_b,i the share of sequence b\'s context × top assignments that go to expert i and P_b,i the mean router score of expert i over b\'s tokens. It penalises a sequence that crowds into a few experts even when the micro-batch as a whole is balanced (e.g. each language or topic on experts of its own, which the batch loss allows): about 1 when every sequence spreads its tokens evenly, up to E when each sequence uses one expert. Each micro-batch\'s loss is weighted by `balance` / accumulate, as the batch loss is, so an optimiser step\'s loss is `balance` times the mean over all its sequences whatever the accumulation (the batch loss is not: its f and P are one micro-batch\'s). The balance figure of the log, view and metrics is then this loss. It acts on scoring routers (learned, frozen, cosine; a rule router has no balance loss either way) with token routing and sparse dispatch: refused with `unit sequence` (a sequence is one routing decision), expert choice (`balance` must be 0 there) and `dispatch soft`. Sweep it against the batch loss with `model.moe.balance-over in [batch, sequence]`.', 'batch'),
});

export const moeSchema = typed({
  type: ['object', 'null'],
  'x-form': 'block',
  description: 'Makes the model a Mixture of Experts: every `every`-th feed-forward layer becomes a set of experts with a router. Leave it out for a dense model.',
  'x-syntax': 'moe { experts 8  top 2 ... }',
  default: null,
  additionalProperties: false,
  required: ['every', 'experts', 'top', 'unit', 'prefix', 'scope', 'router', 'label', 'dim', 'gate', 'normalize', 'noise', 'noiseDist', 'capacity', 'dropless', 'balance', 'zloss', 'shared', 'expertWidth', 'sharedWidth', 'granularity', 'expert', 'activation', 'second', 'dispatch', 'slots', 'layers', ...keysOf(chenMoeKeys), ...keysOf(balancingMoeKeys)],
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
    expertWidth: optionalInCode({
      type: ['integer', 'null'], minimum: 1, maximum: 1_048_576, default: null, 'x-units': ['ffn-fraction'],
      description: 'Hidden width of each routed expert (fine-grained experts, DeepSeekMoE): a fraction of the dense FFN width `ffn` (`0.25` or `25%`, rounded to the nearest unit) or an absolute width (a whole number, `96`). Independent of `shared-width` and of the dense layers\' `ffn`. Resolved to the absolute width, divided by `granularity`.',
      'x-syntax': 'FRACTION | PERCENT% | UNITS', 'x-default-text': 'ffn',
    }),
    sharedWidth: optionalInCode({
      type: ['integer', 'null'], minimum: 1, maximum: 1_048_576, default: null, 'x-units': ['ffn-fraction'],
      description: 'Hidden width of each shared expert: a fraction of `ffn` (`0.25`, `25%`) or an absolute width. Not changed by `granularity` (DeepSeekMoE\'s shared experts are as wide as a fine-grained expert: write the same width as `expert-width`).',
      'x-syntax': 'FRACTION | PERCENT% | UNITS', 'x-default-text': 'ffn',
    }),
    granularity: optionalInCode(int('DeepSeekMoE\'s fine-grained split m: each routed expert is split into m experts of 1/m the width, and each token takes m times as many, so the experts\' weight matrices keep their total and active counts (`experts` × m, `top` × m, `expert-width` / m, which m must divide; the router and the experts\' output biases grow m-fold). Resolved into those keys; 1: no split.', 1, 1, { maximum: 64 })),
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
});

export const modelSchema = typed({
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
});
