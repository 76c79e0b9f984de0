// The resolved pipeline: plain JSON, the contract between the .moe front end and the rest of
// the compiler (lowering to GPU plans) and the runtime. Every type here is derived from the JSON
// Schema (compiler/frontend/schema.ts, which documents every field; see docs/LANGUAGE.md) by
// `Static`: a key added to the schema appears here. Where a type says more than the schema, it is
// an explicit derivation below, with its reason; keys added to the language after configs were
// built in code (tests, benches) are optional here (`optionalInCode` in the schema files).
//
// test/compiler/frontend/schema-types.test.ts checks the derivation, at compile time and against
// the TypeScript checker's view of these types at run time.

import type { SourceKind } from './corpora.js';
import type { Static } from './schema-builders.js';
import type { dataSchema, evaluateSchema, modelSchema, moeSchema, pipelineSchema, sweepSchema, trainSchema } from './schema.js';

export type { SourceKind };

export interface DataSet extends Static<typeof dataSchema> {}
export type DataSource = DataSet['source'];
export type SyntheticClusters = DataSet['synthetic'];

/** The `moe` block; the schema's node also admits null (a dense model). */
export interface MoeConfig extends NonNullable<Static<typeof moeSchema>> {}
export type RouterKind = MoeConfig['router'];

export interface Model extends Static<typeof modelSchema> {}
export interface Train extends Static<typeof trainSchema> {}
export interface Evaluate extends Static<typeof evaluateSchema> {}
export type EvalRef = Evaluate['perplexity'][number];

type SweepNode = NonNullable<Static<typeof sweepSchema>>;
type DimensionNode = SweepNode['dimensions'][number];
/**
 * The schema lists no `required` keys of `when` (a missing key is still reported, by the sweep's
 * own parser, with its span); expansion always writes all three.
 */
export interface SweepDimension extends Omit<DimensionNode, 'when'> {
  when: Required<NonNullable<DimensionNode['when']>> | null;
}
/** `compare PATH [against VALUE] [by PATH, ...]`: an effect the report states first. */
export type Comparison = SweepNode['comparisons'][number];
export interface SweepSpec extends Omit<SweepNode, 'dimensions'> {
  dimensions: SweepDimension[];
}

/** The whole pipeline; `sweep` with the dimensions as expansion writes them (see SweepDimension). */
export interface Pipeline extends Omit<Static<typeof pipelineSchema>, 'sweep'> {
  sweep: SweepSpec | null;
}

/** One trial's configuration: a pipeline without the sweep. */
export type TrialConfig = Omit<Pipeline, 'sweep'> & { sweep: null };

export interface ParamCount {
  /** Every trainable parameter. */
  total: number;
  /** Parameters one token uses (k routed + shared experts in MoE layers). */
  active: number;
}

export interface Trial {
  /** Short stable hash of the canonical config: same file, same ids. */
  id: string;
  /** Readable: `unit=sequence,top=2,experts=8,seed=1`; `dense=total,ffn=3072,seed=1` for baselines; `base` when nothing is swept. */
  name: string;
  index: number;
  /** Swept path -> value as written. */
  params: Record<string, string>;
  seed: number;
  /** null, or the kind of dense baseline this trial is. */
  baseline: 'total' | 'active' | null;
  /** For baselines: the name of the MoE trial it was matched to. */
  matches: string | null;
  params_count: ParamCount;
  config: TrialConfig;
}
