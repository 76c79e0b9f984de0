// The validation registry: every rule a pipeline is checked against, each registered once, in the
// order they run. `moec check` runs all three phases; the front end runs schema and semantic on
// every resolved pipeline and trial; `compileTrial` refuses through the lowering phase, so what
// `moec check` passes the lowering takes. A new rule is one entry of one of these lists, and a case
// of the rule tables in test/compiler/rules (a test fails for a rule without one).
import type { Diagnostic } from '../../grammar/diagnostics.js';
import type { Pipeline, TrialConfig } from '../frontend/types.js';
import { routerRules } from '../routing/index.js';
import { dataRules } from './data.js';
import { lowerMoeRules, lowerSharedRules } from './lower-moe.js';
import { lowerPatchRules } from './lower-patch.js';
import { modelRules } from './model.js';
import { patchRules } from './patch.js';
import type { Finding, Phase, Rule, RuleInput } from './rule.js';
import { schemaRules } from './schema.js';

/** Found by compiling, not from the config: a kernel grid past WebGPU's workgroup limit (lower/compile.ts). */
export const compiledRules = [{ code: 'lower.grid-too-large', node: 'train', phase: 'lowering' }] as const;

export const registry = [
  ...schemaRules,
  ...modelRules,
  ...dataRules,
  ...patchRules,
  ...lowerPatchRules,
  ...lowerMoeRules,
  ...routerRules,
  ...lowerSharedRules,
] as const;

/** Every code a diagnostic of moec can carry from the registry. */
export type RuleCode = (typeof registry)[number]['code'] | (typeof compiledRules)[number]['code'];

/** A rule's finding with its code. */
export interface Problem extends Finding {
  code: RuleCode;
}

/** What the rules of `phases` find in `input`, in registry order. */
export function runRules(phases: readonly Phase[], input: RuleInput): Problem[] {
  const out: Problem[] = [];
  for (const r of registry as readonly Rule<RuleCode>[]) {
    if (!phases.includes(r.phase)) continue;
    const f = r.check(input);
    for (const x of f === null ? [] : Array.isArray(f) ? f : [f]) out.push({ ...x, code: r.code });
  }
  return out;
}

const unwritten = () => false;

/**
 * The first error the rules of `phases` find in trial config `c`, or null, read from the config
 * alone (no source text: rules that need to know what the file wrote do not fire). `moec check`
 * asks the lowering phase (the front end ran the others); `compileTrial` asks the semantic phase
 * too, so a config built in code or stored (eval, export) is refused by the same rules.
 */
export function loweringRefusal(c: TrialConfig | Pipeline, phases: readonly Phase[] = ['lowering']): (Problem & { hint: string }) | null {
  const p = runRules(phases, { config: c, written: unwritten }).find((f) => f.severity !== 'warning');
  return p ? { ...p, hint: p.hint ?? '' } : null;
}

/** A problem as a diagnostic at its place (`spanOf` maps the pointer to the text). */
export function diagnosticOf(p: Problem, spanOf: (ptr: string) => Diagnostic['span'], prefix = '', suffix = ''): Diagnostic {
  const d: Diagnostic = { severity: p.severity ?? 'error', message: `${prefix}${p.message}`, span: spanOf(p.ptr), code: p.code };
  const hint = p.hint === undefined ? (suffix || undefined) : `${p.hint}${suffix}`;
  if (hint !== undefined) d.hint = hint;
  return d;
}

export type { Finding, Phase, Rule, RuleInput, RuleNode } from './rule.js';
