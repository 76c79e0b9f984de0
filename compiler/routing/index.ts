// The router kinds and gates, registered in one table each. A new router kind is a file of this
// folder (see router.ts for what it brings) plus its line here; the frontend's schema lists its
// name. The sparse MoE layer (graph/moe.ts), the parameter counts (frontend/params.ts) and the
// lowering's refusals read these tables, never the kind's name.
import type { MoeConfig, RouterKind } from '../frontend/types.js';
import { defineKernel } from '../kernels/definition.js';
import { moeRouterForwardKernel, routerForwardBindings } from '../kernels/moe-router.js';
import { moeRouterReference, type MoeRouterShape } from '../reference/moe.js';
import { cosineRouter } from './cosine.js';
import { labelRouter } from './label.js';
import { hashRouter, hashRules } from './hash.js';
import { frozenRouter, learnedRouter } from './linear.js';
import { randomRouter } from './random.js';
import type { RouterPlugin, RuleInputs, RuleRouter } from './router.js';

export const routers: Record<RouterKind, RouterPlugin> = {
  learned: learnedRouter,
  frozen: frozenRouter,
  cosine: cosineRouter,
  random: randomRouter,
  label: labelRouter,
  hash: hashRouter,
};

/** The router kinds' own refusals, as rules of the validation registry (compiler/rules). */
export const routerRules = [...hashRules] as const;

export { gates } from './gates.js';
export type { RouterPlugin, RuleRouter, ScoringRouter } from './router.js';

/**
 * One routing layer's router parameters. Counts run on unvalidated configs too (the front end counts
 * while it reports), so an unknown kind counts 0 here and is reported there.
 */
export function routerParams(width: number, moe: MoeConfig): number {
  const r = (routers as Partial<Record<string, RouterPlugin>>)[moe.router];
  return r ? r.params(width, moe) : 0;
}

/** The rule router whose kernel mode is `mode` (every mode but 'logits'). */
export function ruleRouter(mode: string): RuleRouter {
  const r = routers[mode as RouterKind];
  if (!r || r.scores) throw new Error(`no router kind follows the rule '${mode}'`);
  return r;
}

/** The router kind's mode in the router forward kernel: 'logits' for scoring routers, else its kind. */
export const routerMode = (r: RouterPlugin): MoeRouterShape['mode'] => (r.scores ? 'logits' : r.kind);

/** The router forward kernel of any mode. */
const ruleOf = (s: MoeRouterShape) => (s.mode === 'logits' ? undefined : ruleRouter(s.mode).rule);
export const routerForwardKernel = (name: string, s: MoeRouterShape) => moeRouterForwardKernel(name, s, ruleOf(s));
/** The router forward of any mode: its input binding is the logits or the rule's input. */
export const routerForward = defineKernel('moe_router_fwd', (s: MoeRouterShape) => routerForwardBindings(s, ruleOf(s)), { portable: routerForwardKernel });

/** The router forward's reference of any mode. */
export function routerReference(s: MoeRouterShape, inputs: RuleInputs & { logits?: Float32Array; train?: boolean; bias?: Float32Array }): { sel: Uint32Array; gate: Float32Array } {
  return s.mode === 'logits' ? moeRouterReference(s, inputs) : ruleRouter(s.mode).reference(s, inputs);
}
