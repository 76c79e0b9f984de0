// The JSON Schema of a resolved pipeline: the contract with the rest of the compiler, the
// validator of every resolved trial (ajv), the reference of every field of the language
// (docs/LANGUAGE.md is generated from it by compiler/frontend/docs.ts) and, through `Static`,
// the source of the TypeScript types (compiler/frontend/types.ts): nothing is written twice.
//
// Why the types come from the schema and not the reverse: the schema holds far more than the
// types (descriptions, bounds, defaults, the x-* forms the resolver and the docs read), so
// generating it from types would need all of that as annotations on the types and a generator
// step in the build. The builders (schema-builders.ts) return the same plain objects as before
// and carry each node's type on a phantom key, so the schema object is unchanged. Libraries
// looked at first: @sinclair/typebox writes its own forms (nullable as anyOf, pairs as tuple
// `items`, its own key order), so keeping this schema would take Type.Unsafe on most nodes;
// json-schema-to-ts (3.1.1) needs the whole schema as one `as const` literal and reads a
// two-item array (`minItems 2, maxItems 2`) as number[], not the pair the code uses.
//
// The schema is split by block: schema-data.ts, schema-model.ts (model and moe),
// schema-train.ts (train and evaluate), schema-sweep.ts.
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
import { typed, type JsonSchema } from './schema-builders.js';
import { dataSchema } from './schema-data.js';
import { modelSchema, moeSchema } from './schema-model.js';
import { evaluateSchema, trainSchema } from './schema-train.js';
import { sweepSchema } from './schema-sweep.js';

export type { JsonSchema, Static } from './schema-builders.js';
export { dataSchema, evaluateSchema, modelSchema, moeSchema, sweepSchema, trainSchema };

export const pipelineSchema = typed({
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
});

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
