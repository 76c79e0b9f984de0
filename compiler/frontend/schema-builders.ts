// The JSON Schema node type, the typed builders the schema is written with, and `Static<S>`: the
// TypeScript type of the values a schema node admits, read from the node itself. The schema is
// the one source of the contract (see schema.ts); compiler/frontend/types.ts derives the types.
//
// Every builder returns the same plain object it always did: the types ride on a phantom key
// (`staticType`, declared only, never set), so JSON.stringify, ajv and the docs see no change.
// The structural reading (`type`, `enum`, `properties`/`required`, `items`, `additionalProperties`,
// `minItems`/`maxItems` 2 as a pair) covers the keywords this schema uses, nothing more.

export type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: readonly unknown[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  required?: string[];
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  'x-syntax'?: string;
  'x-form'?: string;
  'x-units'?: string[];
  'x-derived'?: boolean;
  'x-repeat'?: boolean;
  'x-call'?: { positional?: Record<string, string>; keys?: Record<string, string[]> };
  'x-default-text'?: string;
  'x-applies'?: string[];
  [k: string]: unknown;
};

declare const staticType: unique symbol;
declare const inCodeOptional: unique symbol;

/** A schema node that carries the type of the values it admits (type-level only). */
export type Typed<T> = JsonSchema & { readonly [staticType]: T };

/**
 * Marks a key the resolver always fills but that configs built in code (tests, benches) may leave
 * out, so consumers default it: keys added to the language after those configs were written.
 * Type-level only: the schema still requires the key of every resolved pipeline.
 */
export type OptionalInCode = { readonly [inCodeOptional]: true };

/** What a schema literal may hold, as `const` inference sees it (readonly arrays). */
export type SchemaIn = {
  readonly type?: string | readonly string[];
  readonly enum?: readonly unknown[];
  readonly properties?: { readonly [k: string]: SchemaIn };
  readonly required?: readonly string[];
  readonly items?: SchemaIn;
  readonly additionalProperties?: boolean | SchemaIn;
  readonly [k: string]: unknown;
};

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The TypeScript type of the values schema node S admits. */
export type Static<S> = S extends { readonly [staticType]: infer T }
  ? T
  : S extends { readonly enum: readonly (infer V)[] }
    ? V
    : S extends { readonly type: infer T }
      ? OfType<S, T extends readonly (infer U)[] ? U : T>
      : unknown;

type OfType<S, T> = T extends 'string'
  ? string
  : T extends 'integer' | 'number'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'null'
        ? null
        : T extends 'array'
          ? ArrayOf<S>
          : T extends 'object'
            ? ObjectOf<S>
            : never;

// `minItems 2, maxItems 2` is the schema's way of writing a pair ([LOW, HIGH], Adam's betas).
type ArrayOf<S> = S extends { readonly items: infer I }
  ? S extends { readonly minItems: 2; readonly maxItems: 2 }
    ? [Static<I>, Static<I>]
    : Static<I>[]
  : unknown[];

type ObjectOf<S> = S extends { readonly properties: infer P }
  ? PropsOf<P, S extends { readonly required: readonly (infer R)[] } ? R : never>
  : S extends { readonly additionalProperties: infer A extends object }
    ? Record<string, Static<A>>
    : Record<string, unknown>;

type RequiredKeys<P, R> = { [K in keyof P]: K extends R ? (P[K] extends OptionalInCode ? never : K) : never }[keyof P];
type PropsOf<P, R> = Simplify<
  { -readonly [K in RequiredKeys<P, R>]: Static<P[K]> } & { -readonly [K in Exclude<keyof P, RequiredKeys<P, R>>]?: Static<P[K]> }
>;

type Merge<A, B> = Omit<A, keyof B> & B;

/** A schema node written as a literal, typed by what it says. */
export function typed<const S extends SchemaIn>(s: S): Typed<Static<S>> {
  return s as unknown as Typed<Static<S>>;
}

/** Marks one node as optional in code (see OptionalInCode). */
export function optionalInCode<const S extends SchemaIn>(s: S): Typed<Static<S>> & OptionalInCode {
  return s as unknown as Typed<Static<S>> & OptionalInCode;
}

/** Marks every node of a group of keys as optional in code (see OptionalInCode). */
export function optionalInCodeKeys<const G extends Record<string, SchemaIn>>(group: G): { [K in keyof G]: G[K] & OptionalInCode } {
  return group as { [K in keyof G]: G[K] & OptionalInCode };
}

/** The keys of a group, typed, for a `required` list. */
export function keysOf<G extends object>(group: G): (keyof G & string)[] {
  return Object.keys(group) as (keyof G & string)[];
}

type IntType<D> = { readonly type: D extends null ? readonly ['integer', 'null'] : 'integer' };

// The builders below return what they always returned; only their types are new.
export function int<const D extends number | null, const E extends SchemaIn = {}>(
  description: string, dflt: D, min = 0, extra: E = {} as E,
): Typed<Static<Merge<IntType<D>, E>>> {
  return { type: dflt === null ? ['integer', 'null'] : 'integer', description, default: dflt, minimum: min, ...extra } as never;
}
export function num<const E extends SchemaIn = {}>(description: string, dflt: number, extra: E = {} as E): Typed<Static<Merge<{ readonly type: 'number' }, E>>> {
  return { type: 'number', description, default: dflt, ...extra } as never;
}
export function enm<const V extends readonly string[], const E extends SchemaIn = {}>(
  values: V, description: string, dflt: V[number], extra: E = {} as E,
): Typed<V[number]> {
  return { type: 'string', enum: values, description, default: dflt, 'x-syntax': values.join(' | '), ...extra } as never;
}
export function bool(description: string, dflt: boolean): Typed<boolean> {
  return { type: 'boolean', description, default: dflt, 'x-syntax': 'true | false' } as never;
}
export function range(description: string, dflt: [number, number]): Typed<[number, number]> {
  return {
    type: 'array', items: { type: 'number', minimum: 0, maximum: 1000 }, minItems: 2, maxItems: 2, description, default: dflt, 'x-syntax': '[LOW, HIGH]',
  } as never;
}
