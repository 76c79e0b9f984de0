// Reading a block's entries by its schema: each scalar checked and converted (5% -> a marker of a
// fraction of the steps, 4x -> of the width, 25% of ffn), calls such as `router label(genre)` and
// `unit sequence(prefix 8)`, data sources and evaluation references; each value's span recorded.
import path from 'node:path';
import type { Value } from '../../grammar/ast.js';
import { valueText } from '../../grammar/ast.js';
import { didYouMean } from '../../grammar/diagnostics.js';
import type { Span } from '../../grammar/span.js';
import { corpusLanguages, corpusNames, fileSourceKinds, isCorpus } from './corpora.js';
import { blockKeys, blockSchemas, dataSchema, keyName, propName, type JsonSchema } from './schema.js';
import { type Entry, type Tree } from './tree.js';
import type { Ctx } from './resolve-context.js';

export const PCT = Symbol('percent-of-steps');
export const MULT = Symbol('multiplier');
/** A fraction of the dense FFN width (`expert-width 25%`), resolved once `ffn` is known. */
export const FRAC = Symbol('fraction-of-ffn');
export type Marker = { [PCT]?: number; [MULT]?: number; [FRAC]?: number };

function types(s: JsonSchema): string[] {
  return s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
}

function where(ptr: string): string {
  const parts = ptr.split('/').filter(Boolean);
  if (parts[0] === 'data') return `data ${parts[1]}`;
  return parts.length > 1 ? parts.slice(-1).map(keyName)[0]! : parts[0] ?? 'file';
}

/** `write a value from 1 to 1024`, from the schema's bounds. */
function rangeHint(key: string, s: JsonSchema): string {
  const lo = s.minimum ?? s.exclusiveMinimum;
  const hi = s.maximum ?? s.exclusiveMaximum;
  if (lo === undefined && hi === undefined) return `write a plain number for '${key}'`;
  const from = lo === undefined ? '' : `${s.exclusiveMinimum !== undefined ? 'above' : 'from'} ${lo}`;
  const to = hi === undefined ? '' : `${s.exclusiveMaximum !== undefined ? 'below' : 'up to'} ${hi}`;
  return `'${key}' takes a value ${[from, to].filter(Boolean).join(' ')}`;
}

/** Read one scalar value according to its schema; reports and returns undefined when it does not fit. */
function scalar(v: Value, s: JsonSchema, key: string, ctx: Ctx): unknown {
  const ts = types(s);
  const units = s['x-units'] ?? [];
  const text = valueText(v);
  if (v.kind === 'ident' && (v.name === 'none' || v.name === 'null') && ts.includes('null')) return null;
  if (ts.includes('integer') || ts.includes('number')) {
    if ((v.kind === 'number' || v.kind === 'percent' || v.kind === 'multiplier') && !Number.isFinite(v.value)) {
      ctx.error(`'${key}' is too large: '${v.raw}' is beyond the range of a number`, v.span, rangeHint(key, s));
      return undefined;
    }
    if (v.kind === 'number') return v.value;
    if (v.kind === 'percent') {
      if (units.includes('percent')) return v.value;
      if (units.includes('steps-percent')) return { [PCT]: v.value } as Marker;
      if (units.includes('ffn-fraction')) return { [FRAC]: v.value } as Marker;
      ctx.error(`'${key}' does not take a percentage`, v.span, s['x-syntax'] ? `write: ${key} ${s['x-syntax']}` : `write a plain number`);
      return undefined;
    }
    if (v.kind === 'multiplier') {
      if (units.includes('multiplier')) return { [MULT]: v.value } as Marker;
      ctx.error(`'${key}' does not take a multiplier like '${v.raw}'`, v.span, 'write a plain number');
      return undefined;
    }
    ctx.error(`'${key}' expects a number, found '${text}'`, v.span, s['x-syntax'] ? `write: ${key} ${s['x-syntax']}` : undefined);
    return undefined;
  }
  if (ts.includes('boolean')) {
    if (v.kind === 'ident' && ['true', 'yes', 'on'].includes(v.name)) return true;
    if (v.kind === 'ident' && ['false', 'no', 'off'].includes(v.name)) return false;
    ctx.error(`'${key}' expects true or false, found '${text}'`, v.span);
    return undefined;
  }
  if (ts.includes('string')) {
    if (v.kind === 'ident') return v.name;
    if (v.kind === 'string') return v.value;
    if (s.enum) return text; // reported by validation as an unknown value, with the choices
    ctx.error(`'${key}' expects a name, found '${text}'`, v.span);
    return undefined;
  }
  ctx.error(`'${key}' cannot be set here`, v.span);
  return undefined;
}

interface ObjState {
  out: Record<string, unknown>;
  seen: Map<string, Span>;
}

/** Resolve a block tree against an object schema, filling defaults. */
export function resolveObject(tree: Tree | undefined, schema: JsonSchema, ptr: string, ctx: Ctx): Record<string, unknown> {
  const props = schema.properties ?? {};
  const st: ObjState = { out: {}, seen: new Map() };
  for (const e of tree?.entries ?? []) {
    if (e.key.includes('.')) {
      ctx.error(`dotted path '${e.key}' can only be used in preset and sweep blocks`, e.keySpan, `inside ${where(ptr)} write the key alone, e.g. '${e.key.split('.').pop()}'`);
      continue;
    }
    const prop = propName(e.key);
    const ps = props[prop];
    if (!ps || ps['x-derived'] || keyName(prop) !== e.key) {
      const keys = blockKeys(schema);
      ctx.error(`unknown key '${e.key}' in ${where(ptr)}${didYouMean(e.key, keys)}`, e.keySpan, `keys here: ${keys.join(', ')}`);
      continue;
    }
    const fptr = `${ptr}/${prop}`;
    if (ps['x-repeat']) {
      const list = (st.out[prop] as unknown[] | undefined) ?? [];
      const i = list.length;
      const item = readEvalRef(e, ps, `${fptr}/${i}`, ctx);
      if (item) { list.push(item); ctx.spans.set(`${fptr}/${i}`, e.span); }
      st.out[prop] = list;
      if (!ctx.spans.has(fptr)) ctx.spans.set(fptr, e.keySpan);
      continue;
    }
    const first = st.seen.get(prop);
    if (first) {
      ctx.error(`'${e.key}' is set twice in ${where(ptr)} (first at line ${first.line})`, e.keySpan, 'remove one of them');
      continue;
    }
    st.seen.set(prop, e.keySpan);
    readField(e, prop, ps, fptr, st, ctx);
  }
  for (const [prop, ps] of Object.entries(props)) {
    if (prop in st.out || ps['x-derived']) continue;
    if (ps['x-form'] === 'block' && ps.default !== null && ps.default !== undefined) st.out[prop] = resolveObject(undefined, ps, `${ptr}/${prop}`, ctx);
    else if (ps.default !== undefined) st.out[prop] = structuredClone(ps.default);
  }
  return st.out;
}

function readField(e: Entry, prop: string, ps: JsonSchema, fptr: string, st: ObjState, ctx: Ctx): void {
  const key = e.key;
  const values = e.args.flat();
  const valueSpan = values[0]?.span ?? e.keySpan;
  ctx.spans.set(fptr, values.length ? { ...values[0]!.span, end: values[values.length - 1]!.span.end, endLine: values[values.length - 1]!.span.endLine, endCol: values[values.length - 1]!.span.endCol } : e.keySpan);
  if (ps['x-form'] === 'block') {
    if (values.length) { ctx.error(`'${key}' takes a block, not values: write '${key} { ... }'`, valueSpan); return; }
    if (!e.block) { ctx.error(`'${key}' needs a block: write '${key} { ... }'`, e.keySpan, ps['x-syntax'] ? `e.g. ${ps['x-syntax']}` : undefined); return; }
    ctx.spans.set(fptr, e.keySpan);
    st.out[prop] = resolveObject(e.block, ps, fptr, ctx);
    return;
  }
  if (e.block) { ctx.error(`'${key}' takes a value, not a block`, e.block.span, ps['x-syntax'] ? `write: ${key} ${ps['x-syntax']}` : undefined); return; }
  if (e.args.length > 1 && ps['x-form'] !== 'source') {
    ctx.error(`unexpected ',' in '${key}'`, e.args[1]![0]?.span ?? e.keySpan, Array.isArray(ps.default) ? `write a list: ${key} [a, b]` : undefined);
    return;
  }
  if (values.length === 0) {
    ctx.error(`'${key}' needs a value`, e.keySpan, ps['x-syntax'] ? `write: ${key} ${ps['x-syntax']}` : undefined);
    return;
  }
  if (ps['x-form'] === 'source') { readSource(e, fptr, st, ctx); return; }
  if (values.length > 1) {
    ctx.error(`'${key}' takes one value, found ${values.length}: put each setting on its own line or separate settings with ';'`, values[1]!.span);
    return;
  }
  const v = values[0]!;
  const ts = types(ps);
  if (ts.includes('array')) {
    if (v.kind !== 'list') { ctx.error(`'${key}' expects a list like [a, b], found '${valueText(v)}'`, v.span, ps['x-syntax'] ? `write: ${key} ${ps['x-syntax']}` : undefined); return; }
    const items: unknown[] = [];
    v.items.forEach((it, i) => {
      ctx.spans.set(`${fptr}/${i}`, it.span);
      const x = scalar(it, ps.items ?? {}, key, ctx);
      if (x !== undefined) items.push(x);
    });
    st.out[prop] = items;
    return;
  }
  if (ps['x-form'] === 'call') { readCall(v, key, prop, ps, fptr, st, ctx); return; }
  if (ps['x-form'] === 'capacity' && v.kind === 'ident' && v.name === 'dropless') {
    if (st.seen.has('dropless') && st.seen.get('dropless') !== e.keySpan) { ctx.error(`'dropless' is set twice`, v.span); return; }
    st.seen.set('dropless', e.keySpan);
    st.out['dropless'] = true;
    ctx.spans.set(fptr.replace(/capacity$/, 'dropless'), v.span);
    return;
  }
  if (ps['x-form'] === 'ref') {
    if (v.kind === 'ident' && v.path.length === 1) st.out[prop] = v.name;
    else if (v.kind === 'string') st.out[prop] = v.value;
    else ctx.error(`'${key}' expects the name of a ${key === 'data' ? 'data set' : 'model'}, found '${valueText(v)}'`, v.span);
    return;
  }
  if (v.kind === 'list' || v.kind === 'call') {
    ctx.error(`'${key}' takes a single value, found '${valueText(v)}'`, v.span, ps['x-syntax'] ? `write: ${key} ${ps['x-syntax']}` : undefined);
    return;
  }
  const x = scalar(v, ps, key, ctx);
  if (x !== undefined) st.out[prop] = x;
}

/** `router label(language)`, `unit sequence(prefix 32)`: the name, and arguments that set sibling keys. */
function readCall(v: Value, key: string, prop: string, ps: JsonSchema, fptr: string, st: ObjState, ctx: Ctx): void {
  if (v.kind === 'ident' || v.kind === 'string') { st.out[prop] = v.kind === 'ident' ? v.name : v.value; ctx.spans.set(fptr, v.span); return; }
  if (v.kind !== 'call') {
    ctx.error(`'${key}' expects a name, found '${valueText(v)}'`, v.span, ps['x-syntax'] ? `write: ${key} ${ps['x-syntax']}` : undefined);
    return;
  }
  st.out[prop] = v.name;
  ctx.spans.set(fptr, v.nameSpan);
  const call = ps['x-call'] ?? {};
  const allowed = call.keys?.[v.name] ?? [];
  const positional = call.positional?.[v.name];
  const parentPtr = fptr.slice(0, fptr.lastIndexOf('/'));
  const siblings = blockSchemaForPtr(parentPtr);
  for (const g of v.args) {
    let sib: string | undefined;
    let val: Value | undefined;
    const g0 = g[0];
    if (g.length === 1 && g0?.kind === 'ident' && allowed.includes(g0.name)) {
      ctx.error(`'${g0.name}' in ${key} ${v.name}(...) needs a value`, g0.span, ps['x-syntax'] ? `write: ${key} ${ps['x-syntax']}` : undefined);
      continue;
    }
    if (g.length === 1 && positional) { sib = positional; val = g0; }
    else if (g.length === 2 && g0?.kind === 'ident' && allowed.includes(g0.name)) { sib = g0.name; val = g[1]; }
    else {
      const what = allowed.length ? `'${v.name}' takes ${allowed.map((a) => `'${a} VALUE'`).join(' or ')}` : `'${v.name}' takes no arguments`;
      ctx.error(`unexpected argument '${g.map(valueText).join(' ')}' to ${key} ${v.name}: ${what}`, g0?.span ?? v.span, ps['x-syntax'] ? `write: ${key} ${ps['x-syntax']}` : undefined);
      continue;
    }
    const sp = propName(sib);
    const sps = siblings?.properties?.[sp];
    if (!sps || !val) continue;
    const prev = st.seen.get(sp);
    if (prev) { ctx.error(`'${sib}' is set twice (first at line ${prev.line})`, val.span); continue; }
    st.seen.set(sp, val.span);
    ctx.spans.set(`${parentPtr}/${sp}`, val.span);
    const x = scalar(val, sps, sib, ctx);
    if (x !== undefined) st.out[sp] = x;
  }
}

function blockSchemaForPtr(ptr: string): JsonSchema | undefined {
  const parts = ptr.split('/').filter(Boolean);
  let s: JsonSchema | undefined;
  if (parts[0] === 'data') { s = dataSchema; parts.splice(0, 2); }
  else { s = blockSchemas[parts[0] as 'model' | 'train' | 'evaluate']; parts.shift(); }
  for (const p of parts) s = s?.properties?.[p];
  return s;
}

function readSource(e: Entry, fptr: string, st: ObjState, ctx: Ctx): void {
  const values = e.args.flat();
  if (e.args.length > 1) { ctx.error(`unexpected ',' in 'source': list languages in brackets, as in [en, de]`, e.args[1]![0]?.span ?? e.keySpan); return; }
  const [k, arg, extra] = values;
  if (!k || k.kind !== 'ident') { ctx.error(`'source' expects a source kind, found '${k ? valueText(k) : ''}'`, k?.span ?? e.keySpan, `write: source ${dataSchema.properties!['source']!['x-syntax']}`); return; }
  const kind = k.name.startsWith('debian.') ? k.name.slice('debian.'.length) : k.name;
  ctx.spans.set(`${fptr}/kind`, k.span);
  const src = { kind, languages: [] as string[], path: null as string | null };
  st.out['source'] = src;
  if (extra) { ctx.error(`'source ${kind}' takes at most one argument`, extra.span); return; }
  if ((fileSourceKinds as readonly string[]).includes(kind)) {
    if (!arg || arg.kind !== 'string') {
      ctx.error(`'source ${kind}' needs a file name in quotes`, arg?.span ?? k.span, `write: source ${kind} "${kind === 'folder' ? 'data/corpus' : `data/corpus.${kind === 'text' ? 'txt' : kind}`}"`);
      return;
    }
    ctx.spans.set(`${fptr}/path`, arg.span);
    // Absolute, so that the trial id and the stored config do not depend on the directory moec ran from.
    src.path = path.resolve(path.dirname(arg.span.file), arg.value);
    return;
  }
  if (!arg) return;
  if (!isCorpus(kind)) { ctx.error(`'source ${kind}' takes no arguments`, arg.span); return; }
  if (!corpusLanguages(kind)) { ctx.error(`corpus '${kind}' has no languages to choose from`, arg.span, `languages exist for: ${corpusNames.filter((n) => corpusLanguages(n)).join(', ')}`); return; }
  if (arg.kind !== 'list') { ctx.error(`languages of '${kind}' go in a list, as in [en, de]`, arg.span); return; }
  arg.items.forEach((it, i) => {
    ctx.spans.set(`${fptr}/languages/${i}`, it.span);
    if (it.kind === 'ident' || it.kind === 'string') src.languages.push(it.kind === 'ident' ? it.name : it.value);
    else ctx.error(`expected a language code such as 'en', found '${valueText(it)}'`, it.span);
  });
}

/** `perplexity wiki.valid`, `experts wiki.valid by language`. */
function readEvalRef(e: Entry, ps: JsonSchema, ptr: string, ctx: Ctx): Record<string, string> | undefined {
  const withLabel = Boolean(ps.items?.properties?.['label']);
  const syntax = `${e.key} ${ps['x-syntax']}`;
  if (e.block) { ctx.error(`'${e.key}' takes a value, not a block`, e.block.span, `write: ${syntax}`); return undefined; }
  const values = e.args.flat();
  const [d, by, label, extra] = values;
  if (!d) { ctx.error(`'${e.key}' needs a data set`, e.keySpan, `write: ${syntax}`); return undefined; }
  if (d.kind !== 'ident' || d.path.length > 2) { ctx.error(`'${e.key}' expects a data set such as 'wiki' or 'wiki.valid', found '${valueText(d)}'`, d.span, `write: ${syntax}`); return undefined; }
  const split = d.path[1] ?? 'valid';
  ctx.spans.set(`${ptr}/data`, d.span);
  ctx.spans.set(`${ptr}/split`, d.span);
  if (split !== 'train' && split !== 'valid') { ctx.error(`unknown split '${split}'${didYouMean(split, ['train', 'valid'])}`, d.span, 'a data set has the splits train and valid'); return undefined; }
  if (!withLabel) {
    if (by) { ctx.error(`'${e.key}' takes one data set per line`, by.span, `write: ${syntax}`); return undefined; }
    return { data: d.path[0]!, split };
  }
  if (!by || by.kind !== 'ident' || by.name !== 'by' || !label || label.kind !== 'ident' || extra) {
    ctx.error(`'${e.key}' needs a label to group by`, (extra ?? label ?? by ?? d).span, `write: ${syntax}`);
    return undefined;
  }
  ctx.spans.set(`${ptr}/label`, label.span);
  return { data: d.path[0]!, split, label: label.name };
}
