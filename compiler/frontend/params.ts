// Parameter counts of the GPT-2-style model the compiler builds (pre-norm blocks, learned
// positions, LM head tied to the token embedding, biases everywhere except the router), and the
// dense FFN width that matches an MoE model's total or active count.
//
// Dense baselines keep layers, width and heads and solve for the FFN hidden width `ffn`:
// the hidden width (d) also changes attention and embeddings, which would confound the
// comparison, and the FFN width is the part experts replicate.
// One routing layer's router parameters, as its router kind counts them.
import { routerParams } from '../routing/index.js';
import { expertsPerToken } from '../routing/expert-choice.js';
import { routedWidth, sharedWidth } from './expert-width.js';
import type { Model, MoeConfig, ParamCount } from './types.js';

const denseFfn = (d: number, h: number) => d * h + h + h * d + d;

function expertParams(d: number, h: number, moe: MoeConfig): number {
  return moe.expert === 'linear' ? d * d + d : denseFfn(d, routedWidth(moe, h));
}

/** Parameters outside the FFNs: embeddings, attention, layer norms. */
function nonFfnParams(m: Model): number {
  const d = m.width;
  const perLayer = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d;
  return m.vocab * d + m.context * d + m.layers * perLayer + 2 * d;
}

/**
 * The patch model of the cluster task (Chen et al. 2022): M experts of J filters over D-dimensional
 * patches, and a D×M router when there is more than one expert.
 */
function patchParams(m: Model, dim: number): ParamCount {
  const experts = m.moe?.experts ?? 1;
  const router = experts > 1 ? dim * experts : 0;
  return { total: router + experts * m.ffn * dim, active: router + m.ffn * dim };
}

/** The filters of a single-expert patch model whose parameter count is closest to `target`. */
export function singleFiltersFor(dim: number, target: number): number {
  return Math.max(1, Math.round(target / dim));
}

/**
 * Total and active parameters; `patchDim` set: the patch model of the cluster task. Active counts
 * the experts a token uses on average (routing/expert-choice.ts `expertsPerToken`), rounded to a
 * whole parameter; `batch` (sequences per micro-batch) makes it exact under expert choice over the batch.
 */
export function countParams(m: Model, patchDim?: number, batch?: number): ParamCount {
  if (patchDim !== undefined) return patchParams(m, patchDim);
  const d = m.width;
  const h = m.ffn;
  let total = nonFfnParams(m);
  let active = total;
  const moeLayers = new Set(m.moe?.layers ?? []);
  // Global scope: one decision shared by every MoE layer, made by the first MoE layer's router.
  const routing = m.moe?.scope === 'global' ? Math.min(...(m.moe.layers.length ? m.moe.layers : [0])) : -1;
  for (let i = 0; i < m.layers; i++) {
    if (m.moe && moeLayers.has(i)) {
      const moe = m.moe;
      // Soft MoE has no router: its dispatch and combine weights come from Φ (counted below).
      const r = moe.dispatch === 'soft' || (moe.scope === 'global' && i !== routing) ? 0 : routerParams(d, moe);
      const e = expertParams(d, h, moe);
      const shared = moe.shared * denseFfn(d, sharedWidth(moe, h));
      total += r + moe.experts * e + shared;
      active += r + expertsPerToken(moe, m.context, batch) * e + shared + (moe.dispatch === 'soft' ? d * moe.experts * moe.slots : 0);
      if (moe.dispatch === 'soft') total += d * moe.experts * moe.slots;
    } else {
      total += denseFfn(d, h);
      active += denseFfn(d, h);
    }
  }
  return { total, active: Math.round(active) };
}

/** The FFN hidden width of a dense model (same layers, width, heads) whose parameter count is closest to `target`. */
export function denseFfnFor(m: Model, target: number): number {
  const d = m.width;
  const base = nonFfnParams(m) + m.layers * d;
  const h = Math.round((target - base) / (m.layers * (2 * d + 1)));
  return Math.max(1, h);
}
