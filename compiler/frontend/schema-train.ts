// The `train { ... }` and `evaluate { ... }` blocks.
import { bool, enm, int, keysOf, num, optionalInCodeKeys, typed, type JsonSchema, type Static, type Typed } from './schema-builders.js';

// Training keys of the patch model (the cluster task only): the router's own rate and optimiser,
// and full-batch gradient descent, as Chen et al. 2022 train it.
const chenTrainKeys = optionalInCodeKeys({
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
});

export const trainSchema = typed({
  type: 'object',
  description: 'How to train: `train { ... }`.',
  additionalProperties: false,
  required: ['data', 'model', 'steps', 'batch', 'accumulate', 'optimizer', 'lr', 'betas', 'eps', 'wd', 'schedule', 'warmup', 'minLr', 'clip', 'seed', 'precision', 'sample', 'balanceBy', ...keysOf(chenTrainKeys)],
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
});

const refProperties = {
  data: { type: 'string', description: 'Data set name.' },
  split: { type: 'string', enum: ['train', 'valid'], description: 'Split (default valid).' },
} as const;
const refItems = typed({ type: 'object', additionalProperties: false, required: ['data', 'split'], properties: refProperties });
const labelledRefItems = typed({
  type: 'object', additionalProperties: false, required: ['data', 'split', 'label'],
  properties: { ...refProperties, label: { type: 'string', description: 'Label to group by.' } },
});

function evalRef(description: string, withLabel: false): Typed<Static<typeof refItems>[]>;
function evalRef(description: string, withLabel: true): Typed<Static<typeof labelledRefItems>[]>;
function evalRef(description: string, withLabel: boolean): JsonSchema {
  return {
    type: 'array',
    'x-repeat': true,
    'x-form': 'evalref',
    description,
    'x-syntax': withLabel ? 'DATA[.SPLIT] by LABEL' : 'DATA[.SPLIT]',
    items: withLabel ? labelledRefItems : refItems,
  };
}

export const evaluateSchema = typed({
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
});
