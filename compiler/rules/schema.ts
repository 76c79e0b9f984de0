// The JSON Schema's rules (ajv, all errors at once): one rule per kind of schema error, each
// message naming the key as the file writes it. Resolution records where each value came from,
// so the errors point at the text.
import AjvModule, { type ErrorObject } from 'ajv';
import { didYouMean } from '../../grammar/diagnostics.js';
import { keyName, pipelineSchema } from '../frontend/schema.js';
import type { Pipeline } from '../frontend/types.js';
import { type Finding, rule } from './rule.js';

type AjvCtor = new (opts: Record<string, unknown>) => { compile: (s: unknown) => ((d: unknown) => boolean) & { errors?: ErrorObject[] | null } };
const Ajv = ((AjvModule as unknown as { default?: AjvCtor }).default ?? AjvModule) as unknown as AjvCtor;
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
export const validatePipelineSchema = ajv.compile(pipelineSchema);

/** The schema's errors of one pipeline, computed once for all the schema rules. */
const errorsOf = new WeakMap<object, ErrorObject[]>();
function schemaErrors(p: Pipeline): ErrorObject[] {
  let es = errorsOf.get(p);
  if (!es) {
    es = validatePipelineSchema(p) ? [] : [...(validatePipelineSchema.errors ?? [])];
    // An unset label is the resolver's null, not a missing value.
    es = es.filter((e) => !(e.keyword === 'type' && (e.data === undefined || e.data === null) && e.instancePath.endsWith('/label')));
    errorsOf.set(p, es);
  }
  return es;
}

function keyOf(ptr: string): string {
  const parts = ptr.split('/').filter((p) => p !== '' && !/^\d+$/.test(p));
  let k = parts[parts.length - 1] ?? 'value';
  if (k === 'kind' && parts[parts.length - 2] === 'source') k = 'source';
  if (k === 'languages') k = 'language';
  return keyName(k);
}

const fmt = (x: unknown): string => (typeof x === 'string' ? `'${x}'` : JSON.stringify(x));

function message(e: ErrorObject): string {
  const key = keyOf(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'enum': {
      const allowed = (p['allowedValues'] as unknown[]).map(String);
      if (typeof e.data !== 'string') return `'${key}' must be one of ${allowed.join(', ')}; found ${fmt(e.data)}`;
      return `unknown ${key} ${fmt(e.data)}${didYouMean(String(e.data), allowed)}`;
    }
    case 'type':
      if (p['type'] === 'integer' || (Array.isArray(p['type']) && (p['type'] as string[]).includes('integer'))) return `'${key}' must be a whole number, found ${fmt(e.data)}`;
      return `'${key}' must be a ${String(p['type']).replace(',null', '')}, found ${fmt(e.data)}`;
    case 'minimum':
      return `'${key}' must be at least ${p['limit']}, found ${fmt(e.data)}`;
    case 'exclusiveMinimum':
      return `'${key}' must be greater than ${p['limit']}, found ${fmt(e.data)}`;
    case 'maximum':
      return `'${key}' must be at most ${p['limit']}, found ${fmt(e.data)}`;
    case 'exclusiveMaximum':
      return `'${key}' must be less than ${p['limit']}, found ${fmt(e.data)}`;
    case 'minItems':
    case 'maxItems':
      return `'${key}' needs ${(e.parentSchema as { minItems?: number }).minItems === (e.parentSchema as { maxItems?: number }).maxItems ? 'exactly' : e.keyword === 'minItems' ? 'at least' : 'at most'} ${p['limit']} values, found ${(e.data as unknown[]).length}`;
    default:
      return `${key} ${e.message ?? 'is invalid'}`;
  }
}

function finding(e: ErrorObject): Finding {
  const f: Finding = { ptr: e.instancePath, message: message(e) };
  if (e.keyword === 'enum') f.hint = `choose one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return f;
}

const KEYWORDS = {
  'schema.enum': ['enum'],
  'schema.type': ['type'],
  'schema.range': ['minimum', 'exclusiveMinimum', 'maximum', 'exclusiveMaximum'],
  'schema.items': ['minItems', 'maxItems'],
} as const;
const named = new Set<string>(Object.values(KEYWORDS).flat());

const schemaRule = <C extends string>(code: C, matches: (keyword: string) => boolean) => rule({
  code, node: 'file', phase: 'schema',
  check: ({ config }) => schemaErrors(config).filter((e) => matches(e.keyword)).map(finding),
});

export const schemaRules = [
  schemaRule('schema.enum', (k) => k === 'enum'),
  schemaRule('schema.type', (k) => k === 'type'),
  schemaRule('schema.range', (k) => (KEYWORDS['schema.range'] as readonly string[]).includes(k)),
  schemaRule('schema.items', (k) => (KEYWORDS['schema.items'] as readonly string[]).includes(k)),
  // What resolution normally prevents (a required key, an unknown property): a config built in code.
  schemaRule('schema.invalid', (k) => !named.has(k)),
] as const;
