// What a validation rule is. Every check of a pipeline, from the schema's to the lowering's
// refusals, is a rule registered once (compiler/rules/index.ts) on the node it concerns, with a
// typed code that diagnostics carry (editors and tests decide by code, never by the message).
import type { MoeConfig, Pipeline, TrialConfig } from '../frontend/types.js';

/**
 * When a rule runs. schema: the JSON Schema (one value at a time); semantic: several fields at once,
 * front-end only (it may read what the file wrote); lowering: what the lowering does not implement,
 * decided from the resolved config alone, so `moec check` and `compileTrial` run the same rules.
 */
export type Phase = 'schema' | 'semantic' | 'lowering';

/** The node of the pipeline a rule is registered on. */
export type RuleNode = 'file' | 'data' | 'model' | 'moe' | 'router' | 'train' | 'evaluate' | 'patch';

/** One problem a rule found: where (a JSON pointer into the resolved pipeline), what, what to write. */
export interface Finding {
  ptr: string;
  message: string;
  hint?: string;
  severity?: 'error' | 'warning';
}

export interface RuleInput {
  config: Pipeline | TrialConfig;
  /** Whether the file (or a preset or sweep) wrote the value at `ptr`; lowering rules never ask. */
  written(ptr: string): boolean;
}

export interface Rule<C extends string = string> {
  code: C;
  node: RuleNode;
  phase: Phase;
  /** The problem, or null. Lowering rules read only `config`: the lowering has no source text. */
  check(input: RuleInput): Finding | Finding[] | null;
}

/** A rule whose code keeps its literal type (so the registry's codes form a union). */
export const rule = <C extends string>(r: Rule<C>): Rule<C> => r;

/** A finding: `no(ptr, message, hint)`. */
export const no = (ptr: string, message: string, hint?: string): Finding => (hint === undefined ? { ptr, message } : { ptr, message, hint });

/** A lowering rule of a language model's MoE layers (the patch model's are lower-patch.ts's). */
export const moeRule = <C extends string>(code: C, node: RuleNode, check: (moe: MoeConfig, c: Pipeline) => Finding | null | false | undefined): Rule<C> => rule({
  code, node, phase: 'lowering',
  check({ config: c }) {
    const moe = c.model.moe;
    if (!moe || c.data[c.train.data]?.source.kind === 'clusters') return null;
    return check(moe, c) || null;
  },
});

/** A refusal at a key of the moe block: `moeNo('noise', message, hint)`. */
export const moeNo = (field: keyof MoeConfig, message: string, hint: string): Finding => ({ ptr: `/model/moe/${field}`, message, hint });
