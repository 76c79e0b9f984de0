// The lowering's refusals of a language model's MoE settings, decided from the config alone: the
// sparse layer's (router noise, z-loss and biases need router scores), Soft MoE's, expert choice's,
// and precision. A router kind's own refusals are its plug-in's (compiler/routing), registered in
// routing/index.ts. Each is one line: `moeRule(code, node, (moe) => cond && moeNo(key, why, what to write))`.
import { routers } from '../routing/index.js';
import { expertChoiceOf } from '../routing/expert-choice.js';
import { unitOf } from '../routing/unit.js';
import { moeNo as no, moeRule, rule } from './rule.js';

const scores = (router: string) => routers[router as keyof typeof routers]?.scores ?? true;
const soft = 'Soft MoE (dispatch soft)';
const isSoft = (m: { dispatch: string }) => m.dispatch === 'soft';
const bias = (m: { biasRate?: number }) => (m.biasRate ?? 0) > 0;
const perSequence = (m: { balanceOver?: string }) => m.balanceOver === 'sequence';

export const lowerMoeRules = [
  rule({
    code: 'lower.f16-moe', node: 'train', phase: 'lowering',
    check: ({ config: c }) => c.train.precision === 'f16' && c.model.moe && c.data[c.train.data]?.source.kind !== 'clusters'
      ? { ptr: '/train/precision', message: "precision f16 is lowered for dense models only: the MoE layers' grouped expert matmuls are f32", hint: 'use precision f32 for MoE models' } : null,
  }),
  moeRule('lower.noise-without-logits', 'moe', (m) => m.noise > 0 && !scores(m.router) && no('noise', `router noise needs router logits; a ${m.router} router has none`, 'use noise 0, or a learned or frozen router')),
  moeRule('lower.sampled-without-scores', 'moe', (m) => m.second === 'sampled' && !scores(m.router) && no('second', `a sampled second expert needs router scores; a ${m.router} router has none`, 'use second top')),
  // Accepting it would train something other than what the file says: the z-loss acts on logits.
  moeRule('lower.zloss-without-logits', 'moe', (m) => m.zloss > 0 && !scores(m.router) && !isSoft(m) && no('zloss', `the router z-loss penalises router logits; a ${m.router} router has none`, `use zloss 0 with router ${m.router}`)),
  moeRule('lower.bias-with-soft', 'moe', (m) => bias(m) && isSoft(m) && no('biasRate', 'auxiliary-loss-free balancing biases a top-k selection; dispatch soft selects nothing', 'use bias-rate 0 with dispatch soft')),
  moeRule('lower.bias-without-scores', 'moe', (m) => bias(m) && !scores(m.router) && no('biasRate', `auxiliary-loss-free balancing biases router scores; a ${m.router} router has none`, 'use a learned, frozen or cosine router, or bias-rate 0')),
  moeRule('lower.bias-with-sampled', 'moe', (m) => bias(m) && m.second === 'sampled' && no('biasRate', 'auxiliary-loss-free balancing biases the top-k choice; a sampled second expert is not a top-k choice', 'use second top with bias-rate, or bias-rate 0')),
  moeRule('lower.seq-balance-with-soft', 'moe', (m) => perSequence(m) && isSoft(m) && no('balanceOver', 'the sequence-wise balance loss counts top-k assignments per sequence; dispatch soft assigns none', 'use balance-over batch with dispatch soft')),

  // Soft MoE has one learned Φ per layer and no top-k, gates, capacity or auxiliary losses. Settings
  // that would change a sparse layer are refused rather than ignored; top, capacity, dropless and
  // balance (whose defaults are not 'off') are ignored, as `moec check` warns. Shared experts beside
  // it are the front end's rule (moe.shared-with-soft).
  moeRule('lower.soft-router', 'moe', (m) => isSoft(m) && m.router !== 'learned' && no('router', `${soft} learns its dispatch/combine logits Φ; a ${m.router} router does not apply`, 'use router learned, or dispatch sparse')),
  moeRule('lower.soft-unit', 'moe', (m) => isSoft(m) && unitOf(m).kind !== 'token' && no('unit', `${soft} mixes the tokens of each sequence into slots; unit ${unitOf(m).kind} does not apply`, 'use unit token, or dispatch sparse')),
  moeRule('lower.soft-scope', 'moe', (m) => isSoft(m) && m.scope !== 'layer' && no('scope', `${soft} has its own Φ in every MoE layer; scope ${m.scope} is not lowered for it`, 'use scope layer')),
  moeRule('lower.soft-noise', 'moe', (m) => isSoft(m) && m.noise > 0 && no('noise', `${soft} has no router logits to add noise to`, 'use noise 0')),
  moeRule('lower.soft-second', 'moe', (m) => isSoft(m) && m.second !== 'top' && no('second', `${soft} has no second expert to sample`, 'use second top')),
  moeRule('lower.soft-zloss', 'moe', (m) => isSoft(m) && m.zloss > 0 && no('zloss', `${soft} has no router z-loss`, 'use zloss 0')),
  moeRule('lower.soft-gate', 'moe', (m) => isSoft(m) && m.gate !== 'softmax-topk' && no('gate', `${soft} weighs slots by softmaxes of its own; gate ${m.gate} does not apply`, 'leave gate out')),
  moeRule('lower.soft-normalize', 'moe', (m) => isSoft(m) && m.normalize && no('normalize', `${soft} has no top-k weights to renormalise`, 'leave normalize out')),

  // The sequence-wise balance loss (kernels/moe-seq-balance.ts) needs several routing decisions per sequence.
  moeRule('lower.seq-balance-with-sequence-unit', 'moe', (m) => perSequence(m) && !isSoft(m) && m.unit === 'sequence' && no('balanceOver', 'with unit sequence a sequence is one routing decision: its load is its K experts whatever the loss, so a per-sequence balance loss has nothing to balance', 'use balance-over batch with unit sequence')),
  moeRule('lower.seq-balance-with-expert-choice', 'moe', (m) => perSequence(m) && expertChoiceOf(m) && no('balanceOver', 'expert choice balances the load by construction and takes no balance loss', 'use balance-over batch (and balance 0) with choice expert')),

  // Expert choice (routing/expert-choice.ts): what it cannot take, at the key to change.
  moeRule('lower.expert-choice-router', 'moe', (m) => expertChoiceOf(m) && !scores(m.router) && no('router', `expert choice ranks tokens by router score; a ${m.router} router has none`, 'use choice token, or a learned, frozen or cosine router')),
  moeRule('lower.expert-choice-balance', 'moe', (m) => expertChoiceOf(m) && m.balance > 0 && no('balance', 'expert choice balances the load by construction (every expert takes c tokens); the balance loss has nothing to act on', 'use balance 0 with choice expert')),
  moeRule('lower.expert-choice-unit', 'moe', (m) => expertChoiceOf(m) && m.unit !== 'token' && no('unit', 'expert choice picks tokens; with sequence routing there is no token score to rank', 'use unit token with choice expert')),
  moeRule('lower.expert-choice-dropless', 'moe', (m) => expertChoiceOf(m) && m.dropless && no('dropless', 'expert choice takes capacity x tokens x top / experts tokens per expert; dropless gives it no number to take', 'use a capacity factor, e.g. capacity 1')),
  moeRule('lower.expert-choice-sampled', 'moe', (m) => expertChoiceOf(m) && m.second === 'sampled' && no('second', 'a sampled second expert is a token-choice rule', 'use second top with choice expert')),
  moeRule('lower.expert-choice-gate', 'moe', (m) => expertChoiceOf(m) && m.gate === 'topk-softmax' && no('gate', 'topk-softmax renormalises over a token\'s top k; under expert choice a token has no fixed k', 'use gate softmax-topk (the paper\'s softmax) or sigmoid')),
  moeRule('lower.expert-choice-normalize', 'moe', (m) => expertChoiceOf(m) && m.normalize && no('normalize', 'under expert choice a token\'s gates are its scores of the experts that chose it, not renormalised', 'use normalize false with choice expert')),
  moeRule('lower.expert-choice-bias', 'moe', (m) => expertChoiceOf(m) && bias(m) && no('biasRate', 'auxiliary-loss-free balancing biases a token-choice top-k; expert choice balances the load by construction', 'use bias-rate 0 with choice expert')),
] as const;

/** After the router kinds' own refusals (registry order). */
export const lowerSharedRules = [
  moeRule('lower.shared-beside-non-gelu', 'moe', (m) => !isSoft(m) && m.shared > 0 && (m.expert !== 'mlp' || m.activation !== 'gelu') && no('shared', 'shared experts are GELU MLPs; they are lowered only next to GELU MLP experts', 'use shared 0, or expert mlp with activation gelu')),
] as const;
