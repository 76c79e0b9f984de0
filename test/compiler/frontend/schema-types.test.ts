// The types of compiler/frontend/types.ts come from the JSON Schema (schema.ts). Two halves:
// type-level assertions below, which the build compiles (a divergence fails `npm run build`), and
// a run-time test that reads the exported types through the TypeScript checker and compares each
// with its schema node: the same keys, no key required that the schema leaves optional, and every
// enum's values as the type's literals.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { enm, int, keysOf, optionalInCodeKeys, range, typed, type JsonSchema, type Static } from '../../../compiler/frontend/schema-builders.js';
import { dataSchema, evaluateSchema, modelSchema, moeSchema, pipelineSchema, sweepSchema, trainSchema } from '../../../compiler/frontend/schema.js';
import type { DataSet, MoeConfig, Pipeline, SweepDimension, Train, TrialConfig } from '../../../compiler/frontend/types.js';
import { repoRoot } from './helpers.js';

// ---- compile time ----
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type OptionalKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];
/** The same type: mutually assignable, the same keys, the same optional keys. */
type Exact<A, B> = Same<A, B> extends true ? (Equal<keyof A, keyof B> extends true ? Equal<OptionalKeys<A>, OptionalKeys<B>> : false) : false;
const holds = <T extends true>(): void => undefined;

// The builders' types follow what each node says.
const later = optionalInCodeKeys({ added: int('A key added later.', 3, 1) });
const block = typed({
  type: 'object',
  additionalProperties: false,
  required: ['count', 'width', 'mode', 'span', 'name', ...keysOf(later)],
  properties: {
    count: int('A count.', 1, 1),
    width: int('A width or none.', null, 1),
    mode: enm(['a', 'b'], 'A mode.', 'a'),
    span: range('A pair.', [0, 1]),
    name: { type: ['string', 'null'], enum: ['x', null], default: null },
    list: { type: 'array', items: { type: 'integer' } },
    table: { type: 'object', additionalProperties: { type: 'boolean' } },
    ...later,
  },
});
holds<Exact<Static<typeof block>, {
  count: number; width: number | null; mode: 'a' | 'b'; span: [number, number]; name: 'x' | null;
  list?: number[]; table?: Record<string, boolean>; added?: number;
}>>();

// Adding a key to a schema adds it to the type; leaving it out of `required` makes it optional.
const baseProps = { count: int('A count.', 1, 1), mode: enm(['a', 'b'], 'A mode.', 'a') };
const before = typed({ type: 'object', required: ['count', 'mode'], properties: baseProps });
const grown = typed({ type: 'object', required: ['count', 'mode', 'extra'], properties: { ...baseProps, extra: enm(['p', 'q'], 'New.', 'p'), loose: int('Not required.', 0) } });
holds<Equal<Static<typeof grown>['extra'], 'p' | 'q'>>();
holds<Equal<Exclude<keyof Static<typeof grown>, keyof Static<typeof before>>, 'extra' | 'loose'>>();
holds<Equal<OptionalKeys<Static<typeof grown>>, 'loose'>>();
holds<Equal<OptionalKeys<Static<typeof block>>, 'list' | 'table' | 'added'>>();

// The real types, at the points the code relies on.
holds<Equal<MoeConfig['router'], 'learned' | 'frozen' | 'random' | 'label' | 'cosine' | 'hash'>>();
holds<Equal<MoeConfig['prefix'], number | null>>();
holds<Equal<Train['betas'], [number, number]>>();
holds<Equal<Train['routerOptimizer'], 'sgd' | 'adamw' | null | undefined>>();
holds<Equal<DataSet['synthetic']['feature'], [number, number]>>();
holds<Equal<Pipeline['version'], 1>>();
holds<Same<Pipeline['data'], Record<string, DataSet>>>();
holds<Same<Pipeline['model']['moe'], MoeConfig | null>>();
holds<Equal<TrialConfig['sweep'], null>>();
holds<Same<SweepDimension['when'], { path: string; op: '==' | '!='; value: string } | null>>();
holds<Equal<OptionalKeys<MoeConfig>, 'expertWidth' | 'sharedWidth' | 'granularity' | 'choice' | 'choiceGroup' | 'init' | 'initScale' | 'biasRate' | 'balanceOver'>>();
holds<Equal<OptionalKeys<DataSet['synthetic']>, 'centre' | 'scale' | 'seed'>>();

// ---- run time: the exported types as the TypeScript checker sees them ----
/** The exported types of a file, read by the checker (no emit). */
function exportedTypes(file: string): { checker: ts.TypeChecker; typeOf(name: string): ts.Type } {
  const program = ts.createProgram([file], {
    strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, types: [], noEmit: true,
  });
  const checker = program.getTypeChecker();
  const exported = new Map(checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)!)!).map((s) => [s.name, s]));
  return {
    checker,
    typeOf(name) {
      const s = exported.get(name);
      assert.ok(s, `${path.basename(file)} exports ${name}`);
      return checker.getDeclaredTypeOfSymbol(s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
    },
  };
}

/** The string and number literals of a union (null and undefined dropped); anything else marks it as not a pure enum. */
function literals(t: ts.Type): string[] {
  const parts = t.isUnion() ? t.types : [t];
  return parts.map((x) => (x.isLiteral() ? String(x.value) : '(not a literal)'));
}

/** Compares a type with an object schema node; returns what differs (empty: nothing). */
function differences(checker: ts.TypeChecker, name: string, t: ts.Type, s: JsonSchema): string[] {
  const out: string[] = [];
  const props = new Map(checker.getPropertiesOfType(t).map((p) => [p.name, p]));
  const keys = Object.keys(s.properties ?? {});
  for (const k of keys) if (!props.has(k)) out.push(`${name}.${k} is in the schema but not in the type`);
  for (const k of props.keys()) if (!keys.includes(k)) out.push(`${name}.${k} is in the type but not in the schema`);
  for (const [k, p] of props) {
    const ps = s.properties?.[k];
    if (!ps) continue;
    if (!(p.flags & ts.SymbolFlags.Optional) && !(s.required ?? []).includes(k)) out.push(`${name}.${k} is required by the type, optional in the schema`);
    if (ps.enum) {
      const lits = literals(checker.getNonNullableType(checker.getTypeOfSymbol(p))).sort();
      const values = ps.enum.filter((v) => v !== null).map(String).sort();
      if (JSON.stringify(lits) !== JSON.stringify(values)) out.push(`${name}.${k}: the type has ${lits.join(' | ')}, the schema ${values.join(' | ')}`);
    }
  }
  return out;
}

test('every exported type of types.ts has exactly its schema node\'s keys, requires none the schema leaves optional, and has the enums\' values', () => {
  const { checker, typeOf } = exportedTypes(path.join(repoRoot, 'compiler/frontend/types.ts'));
  assert.equal(modelSchema.properties!['moe'], moeSchema);
  const pairs: [string, JsonSchema][] = [
    ['Pipeline', pipelineSchema], ['DataSet', dataSchema], ['DataSource', dataSchema.properties!['source']!],
    ['SyntheticClusters', dataSchema.properties!['synthetic']!], ['Model', modelSchema], ['MoeConfig', moeSchema],
    ['Train', trainSchema], ['Evaluate', evaluateSchema], ['EvalRef', evaluateSchema.properties!['perplexity']!.items!],
    ['SweepSpec', sweepSchema], ['SweepDimension', sweepSchema.properties!['dimensions']!.items!],
    ['Comparison', sweepSchema.properties!['comparisons']!.items!],
  ];
  assert.deepEqual(pairs.flatMap(([name, s]) => differences(checker, name, typeOf(name), s)), []);
  assert.ok(checker.getPropertiesOfType(typeOf('MoeConfig')).length >= 30);
});

test('the comparison finds a hand-written type that drifted from the schema', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-types-'));
  try {
    const file = path.join(dir, 'drifted.ts');
    writeFileSync(file, "export interface DataSet { name: string; source: unknown; tokenizer: 'gpt2'; context: number; valid?: number; extra: number }\n");
    const { checker, typeOf } = exportedTypes(file);
    const found = differences(checker, 'DataSet', typeOf('DataSet'), { ...dataSchema, required: dataSchema.required!.filter((k) => k !== 'context') });
    assert.ok(found.includes('DataSet.limit is in the schema but not in the type'), found.join('\n'));
    assert.ok(found.includes('DataSet.extra is in the type but not in the schema'));
    assert.ok(found.includes('DataSet.context is required by the type, optional in the schema'));
    assert.ok(found.includes('DataSet.tokenizer: the type has gpt2, the schema bytes | gpt2'));
    assert.ok(!found.some((f) => f.startsWith('DataSet.valid ')), 'an optional key the schema requires is allowed (optionalInCode)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
