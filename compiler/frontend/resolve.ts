// Resolution: the merged trees of a Scope (plus preset and sweep overrides) -> a resolved
// Pipeline (plain JSON), with defaults filled from the schema, units normalised (5% -> 0.05,
// 4x -> 4 * width, warmup 5% -> steps), and references checked. Records the source span of
// every field it read (by JSON pointer) so validation errors can point at the text.
import path from 'node:path';
import type { Value } from '../../grammar/ast.js';
import { valueText } from '../../grammar/ast.js';
import { didYouMean, error, type Diagnostic } from '../../grammar/diagnostics.js';
import type { Span } from '../../grammar/span.js';
import { corpusLanguages, corpusNames, fileSourceKinds, isCorpus, sourceLabels } from './corpora.js';
import type { Def, Scope } from './load.js';
import {
  blockKeys, blockSchemas, dataSchema, evaluateSchema, keyName, modelSchema, propName,
  trainSchema, type JsonSchema,
} from './schema.js';
import { getPath, setPath, type Entry, type Tree } from './tree.js';
import type { DataSet, Evaluate, Model, MoeConfig, Pipeline, Train } from './types.js';

/** A value set by a preset or a sweep, at a language path such as ['model', 'moe', 'top']. */
export interface Override {
  path: string[];
  args: Value[][];
  keySpan: Span;
  span: Span;
  /** `top=2` (for messages). */
  label?: string;
}

export class Ctx {
  readonly diagnostics: Diagnostic[] = [];
  readonly spans = new Map<string, Span>();
  /** Hint appended to every diagnostic (the trial being resolved). */
  constructor(readonly trial: string | undefined = undefined) {}
  error(message: string, span: Span | undefined, hint?: string, code?: string): void {
    const h = this.trial ? (hint ? `${hint}; in trial ${this.trial}` : `in trial ${this.trial}`) : hint;
    this.diagnostics.push(error(message, span, h, code));
  }
  /** The span recorded for `ptr` or its nearest recorded parent. */
  spanOf(ptr: string): Span | undefined {
    let p = ptr;
    for (;;) {
      const s = this.spans.get(p);
      if (s) return s;
      if (p === '') return undefined;
      p = p.slice(0, p.lastIndexOf('/'));
    }
  }
}

const PCT = Symbol('percent-of-steps');
const MULT = Symbol('multiplier');
/** A fraction of the dense FFN width (`expert-width 25%`), resolved once `ffn` is known. */
const FRAC = Symbol('fraction-of-ffn');
type Marker = { [PCT]?: number; [MULT]?: number; [FRAC]?: number };

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

// ---------------------------------------------------------------------------------------------
// Overrides (presets and sweeps)

/** Checks a language path; returns an error message (with did-you-mean) or undefined. */
export function checkPath(keys: string[], scope: Scope): { message: string; hint?: string } | undefined {
  const [section, ...rest] = keys;
  const sections = ['data', 'model', 'train', 'evaluate'];
  const full = keys.join('.');
  if (!section || !sections.includes(section)) {
    return { message: `path '${full}' names no field: it must start with ${sections.join(', ')}${didYouMean(section ?? '', sections)}` };
  }
  let s: JsonSchema = blockSchemas[section as 'data'];
  let i = 0;
  if (section === 'data') {
    const name = rest[0];
    if (name !== undefined && scope.data.has(name)) i = 1;
    else if (name !== undefined && !blockKeys(dataSchema).includes(name)) {
      return { message: `path '${full}' names no field: no data set or data key '${name}'${didYouMean(name, [...scope.data.keys(), ...blockKeys(dataSchema)])}` };
    }
  } else if (section === 'model') {
    const name = rest[0];
    if (name !== undefined && scope.model.has(name) && !blockKeys(modelSchema).includes(name)) i = 1;
  }
  const tail = rest.slice(i);
  if (tail.length === 0) return { message: `path '${full}' names a block, not a field`, hint: `name a key inside it, e.g. '${full}.${blockKeys(s)[0]}'` };
  let prefix = keys.slice(0, keys.length - tail.length).join('.');
  for (let j = 0; j < tail.length; j++) {
    const k = tail[j]!;
    const ps = s.properties?.[propName(k)];
    if (!ps || ps['x-derived'] || keyName(propName(k)) !== k) {
      const cands = blockKeys(s).map((x) => `${prefix}.${x}`);
      const guess = didYouMean(`${prefix}.${k}`, cands);
      return { message: `path '${full}' names no field${guess}`, hint: `keys of ${prefix}: ${blockKeys(s).join(', ')}` };
    }
    prefix = `${prefix}.${k}`;
    if (j < tail.length - 1) {
      if (ps['x-form'] !== 'block') return { message: `path '${full}' names no field: '${prefix}' is a value, not a block` };
      s = ps;
    } else if (ps['x-form'] === 'block') {
      return { message: `path '${full}' names a block, not a field`, hint: `name a key inside it, e.g. '${full}.${blockKeys(ps)[0]}'` };
    }
  }
  return undefined;
}

export interface View {
  data: Map<string, Tree>;
  model: Map<string, Tree>;
  train: Tree | undefined;
  evaluate: Tree | undefined;
}

function emptyTree(span: Span): Tree {
  return { entries: [], span };
}

/** The model `train` selects in `train` (its `model` entry), if written. */
function selectedModelName(train: Tree | undefined): { name: string; span: Span } | undefined {
  const e = getPath(train, ['model']);
  const v = e?.args[0]?.[0];
  if (v && v.kind === 'ident') return { name: v.name, span: v.span };
  if (v && v.kind === 'string') return { name: v.value, span: v.span };
  return undefined;
}

/** Apply overrides (assumed valid paths: see checkPath) to the scope's trees. */
export function applyOverrides(scope: Scope, overrides: Override[]): View {
  const view: View = {
    data: new Map([...scope.data].map(([k, d]) => [k, d.tree])),
    model: new Map([...scope.model].map(([k, d]) => [k, d.tree])),
    train: scope.train?.tree,
    evaluate: scope.evaluate?.tree,
  };
  const entry = (o: Override, key: string): Entry => ({ key, keySpan: o.keySpan, args: o.args, block: undefined, span: o.span, ...(o.label ? { origin: o.label } : {}) });
  // train first: it may choose the model that `model.KEY` paths refer to.
  for (const pass of [0, 1]) {
    for (const o of overrides) {
      const [section, ...rest] = o.path;
      if ((section === 'train') !== (pass === 0)) continue;
      const last = o.path[o.path.length - 1]!;
      if (section === 'train' || section === 'evaluate') {
        view[section] = setPath(view[section] ?? emptyTree(o.span), rest, entry(o, last));
      } else if (section === 'data') {
        if (rest[0] !== undefined && view.data.has(rest[0]) && rest.length > 1) view.data.set(rest[0], setPath(view.data.get(rest[0])!, rest.slice(1), entry(o, last)));
        else for (const [k, t] of view.data) view.data.set(k, setPath(t, rest, entry(o, last)));
      } else if (section === 'model') {
        let name: string | undefined;
        let keys = rest;
        if (rest[0] !== undefined && view.model.has(rest[0]) && !blockKeys(modelSchema).includes(rest[0])) { name = rest[0]; keys = rest.slice(1); }
        else name = selectedModelName(view.train)?.name ?? (view.model.size === 1 ? [...view.model.keys()][0] : undefined);
        if (name !== undefined && view.model.has(name)) view.model.set(name, setPath(view.model.get(name)!, keys, entry(o, last)));
      }
    }
  }
  return view;
}

/** Overrides from a preset block: `train.steps 100`, or nested `train { steps 100 }`. */
export function presetOverrides(def: Def, scope: Scope, diagnostics: Diagnostic[]): Override[] {
  const out: Override[] = [];
  // `preset small { train.steps 200  model.layers 2 }`: a dotted path that names a field, after a
  // value, starts the next setting (the one-line form users write; a value is never such a path).
  const oneLine = (e: Entry, prefix: string[]): Entry[] => {
    if (e.block || e.args.length !== 1) return [e];
    const out: Entry[] = [];
    let cur: Entry = { ...e, args: [[]] };
    for (const v of e.args[0]!) {
      if (v.kind === 'ident' && v.path.length > 1 && cur.args[0]!.length > 0 && !checkPath([...prefix, ...v.path], scope)) {
        out.push(cur);
        cur = { key: v.name, keySpan: v.span, args: [[]], block: undefined, span: v.span };
        continue;
      }
      cur.args[0]!.push(v);
    }
    out.push(cur);
    return out;
  };
  const walk = (t: Tree, prefix: string[]): void => {
    for (const e of t.entries.flatMap((x) => oneLine(x, prefix))) {
      // `seeds N` in a preset replaces the sweep's seeds (read by presetSeeds, not a field path).
      if (prefix.length === 0 && e.key === 'seeds') continue;
      const keys = [...prefix, ...e.key.split('.')];
      if (e.block) { walk(e.block, keys); continue; }
      const bad = checkPath(keys, scope);
      if (bad) { diagnostics.push(error(bad.message, e.keySpan, bad.hint)); continue; }
      const vs = e.args.flat();
      if (vs.length === 0) { diagnostics.push(error(`'${keys.join('.')}' needs a value`, e.keySpan)); continue; }
      out.push({ path: keys, args: e.args, keySpan: e.keySpan, span: e.span });
    }
  };
  walk(def.tree, []);
  return out;
}

/** A preset's `seeds N` or `seeds [a, b, ...]`: the seeds its sweep runs instead of the sweep's own. */
export function presetSeeds(def: Def, diagnostics: Diagnostic[]): { seeds: number[]; span: Span } | undefined {
  const e = def.tree.entries.find((x) => x.key === 'seeds');
  if (!e) return undefined;
  const v = e.args.flat()[0];
  const whole = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (v && e.args.flat().length === 1 && v.kind === 'number' && whole(v.value) && v.value >= 1 && v.value <= 10000) return { seeds: Array.from({ length: v.value }, (_, i) => i + 1), span: e.keySpan };
  if (v && e.args.flat().length === 1 && v.kind === 'list' && v.items.length && v.items.every((x) => x.kind === 'number' && whole(x.value))) {
    const seeds = v.items.map((x) => (x as { value: number }).value);
    if (new Set(seeds).size === seeds.length) return { seeds, span: e.keySpan };
  }
  diagnostics.push(error(`a preset's 'seeds' must be a count of at least 1 or a list of distinct whole numbers`, v?.span ?? e.keySpan, 'write: seeds 5  or  seeds [1, 2, 3]'));
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The pipeline

const vocabOf: Record<string, number> = { gpt2: 50257, bytes: 256 };

/**
 * `expert-width` / `shared-width` as written (a fraction of `ffn`: `0.25` or `25%`; or a whole
 * width) to the absolute width, null when it is `ffn` itself (so a config that says so is the same
 * trial as one that does not); then `granularity` m: m× the experts and top, 1/m the expert width.
 */
function resolveExpertWidths(moe: MoeConfig, ffn: number, ctx: Ctx): void {
  const width = (key: 'expertWidth' | 'sharedWidth'): number | null | undefined => {
    const v = moe[key] as unknown;
    if (v === null || v === undefined) return null;
    const ptr = `/model/moe/${key}`;
    const name = key === 'expertWidth' ? 'expert-width' : 'shared-width';
    const frac = typeof v === 'object' ? (v as Marker)[FRAC] : typeof v === 'number' && v > 0 && v < 1 ? v : undefined;
    if (frac !== undefined) {
      const w = Math.round(frac * ffn);
      if (frac > 0 && w >= 1) return w;
      ctx.error(`'${name}' ${typeof v === 'object' ? `${+(frac * 100).toPrecision(6)}%` : frac} of ffn ${ffn} is ${+(frac * ffn).toPrecision(6)}, under one unit`, ctx.spanOf(ptr), `write a fraction above ${+(0.5 / ffn).toPrecision(3)}, or a whole width`);
      return undefined;
    }
    if (typeof v === 'number' && !Number.isInteger(v)) {
      ctx.error(`'${name}' ${v} is neither a fraction of ffn (below 1) nor a whole width`, ctx.spanOf(ptr), `write e.g. ${name} 0.25 (a quarter of ffn ${ffn}), 25%, or ${Math.max(1, Math.round(ffn / 4))}`);
      return undefined;
    }
    return v as number; // a whole width; the schema checks its range
  };
  const ew = width('expertWidth');
  const sw = width('sharedWidth');
  // A value reported above is dropped, so the schema does not report it again.
  moe.expertWidth = ew ?? null;
  moe.sharedWidth = sw === undefined || sw === ffn ? null : sw;
  const m = moe.granularity;
  if (ew !== undefined && Number.isInteger(m) && m !== undefined && m > 1) {
    const base = ew ?? ffn;
    if (!Number.isInteger(base) || base % m !== 0) {
      const ok = [1, 2, 3, 4, 6, 8, 16].filter((d) => Number.isInteger(base) && base % d === 0);
      ctx.error(`granularity ${m} splits each expert's width ${base} into ${m} parts, but ${m} does not divide ${base}`, ctx.spanOf('/model/moe/granularity'), `use a granularity that divides ${base} (${ok.join(', ')}), or set expert-width to a multiple of ${m}`);
      return;
    }
    moe.expertWidth = base / m;
    if (Number.isInteger(moe.experts)) moe.experts *= m;
    if (Number.isInteger(moe.top)) moe.top *= m;
  }
  if (moe.expertWidth === ffn) moe.expertWidth = null;
}

/** Resolve a view of the scope into a pipeline; problems go to ctx. */
export function resolveView(scope: Scope, view: View, preset: string | null, ctx: Ctx): Pipeline {
  const data: Record<string, DataSet> = {};
  for (const [name, tree] of view.data) {
    const ptr = `/data/${name}`;
    ctx.spans.set(ptr, scope.data.get(name)!.nameSpan);
    const d = resolveObject(tree, dataSchema, ptr, ctx) as unknown as DataSet;
    d.name = name;
    if (!d.source) {
      ctx.error(`data set '${name}' has no source`, scope.data.get(name)!.nameSpan, `add a line such as: source brown`);
      d.source = { kind: 'text', languages: [], path: null };
    }
    d.labels = sourceLabels(d.source.kind, d.source.languages, d.label);
    d.vocab = d.source.kind === 'clusters' ? 0 : (vocabOf[d.tokenizer] ?? 0);
    data[name] = d;
  }

  ctx.spans.set('/train', scope.train?.nameSpan ?? scope.rootSpan);
  const train = resolveObject(view.train, trainSchema, '/train', ctx) as unknown as Train & { warmup: number | Marker };
  // The data set to train on.
  const dataNames = Object.keys(data);
  if (train.data === undefined) {
    if (dataNames.length === 0) ctx.error(`no data set is defined`, scope.rootSpan, `add one, e.g.: data corpus { source brown }`);
    train.data = dataNames[0] ?? '';
  } else if (!data[train.data]) {
    ctx.error(`train uses data set '${train.data}', which is not defined${didYouMean(train.data, dataNames)}`, ctx.spanOf('/train/data'), dataNames.length ? `defined data sets: ${dataNames.join(', ')}` : undefined);
  }
  // The model.
  const models = [...view.model.keys()];
  let modelName = train.model;
  if (modelName === undefined) {
    if (models.length === 0) ctx.error(`no model is defined`, scope.rootSpan, `add one, e.g.: model mini { layers 2  width 128  heads 2 }`);
    else if (models.length > 1) ctx.error(`several models are defined (${models.join(', ')}): choose one with 'model NAME' in the train block`, scope.train?.nameSpan ?? scope.rootSpan);
    modelName = models[0] ?? '';
    train.model = modelName;
  } else if (!view.model.has(modelName)) {
    ctx.error(`train uses model '${modelName}', which is not defined${didYouMean(modelName, models)}`, ctx.spanOf('/train/model'), models.length ? `defined models: ${models.join(', ')}` : undefined);
  }
  if (typeof train.warmup === 'object' && train.warmup !== null) train.warmup = Math.round((train.warmup[PCT] ?? 0) * train.steps);
  // NGD normalises each expert's gradient: global clipping does not apply, so its default is off.
  if (train.optimizer === 'ngd' && !ctx.spans.has('/train/clip')) train.clip = 0;
  // `synthetic { seed none }`: each trial's data set is drawn from its own seed.
  for (const d of Object.values(data)) if (d.source.kind === 'clusters' && d.synthetic.seed === null && typeof train.seed === 'number') d.synthetic.seed = train.seed;

  ctx.spans.set('/model', scope.model.get(modelName)?.nameSpan ?? scope.rootSpan);
  const model = resolveObject(view.model.get(modelName), modelSchema, '/model', ctx) as unknown as Model & { ffn: number | Marker | undefined };
  model.name = modelName;
  const trainData = data[train.data];
  if (trainData?.source.kind === 'clusters') {
    // The patch model (Chen et al. 2022) has no width: ffn is its filters per expert, as a number.
    if (model.ffn === undefined) ctx.error(`the patch model of the cluster task needs 'ffn', its filters per expert`, ctx.spanOf('/model'), 'write e.g. ffn 16 in the model block');
    else if (typeof model.ffn === 'object') ctx.error(`for the patch model of the cluster task 'ffn' is the number of filters per expert, not a multiple of the width`, ctx.spanOf('/model/ffn'), 'write a number, e.g. ffn 16');
    if (typeof model.ffn !== 'number') model.ffn = 1;
  }
  if (model.ffn === undefined) model.ffn = 4 * model.width;
  else if (typeof model.ffn === 'object' && model.ffn !== null) model.ffn = Math.max(1, Math.round((model.ffn[MULT] ?? 4) * model.width));
  model.vocab = trainData?.vocab ?? 0;
  model.context = trainData ? (trainData.source.kind === 'clusters' ? trainData.synthetic.patches : trainData.context) : 0;
  if (model.moe) {
    const every = model.moe.every;
    const layers: number[] = [];
    if (Number.isInteger(every) && every >= 1 && Number.isInteger(model.layers)) for (let i = every - 1; i < model.layers && layers.length < 4096; i += every) layers.push(i);
    model.moe.layers = layers;
    if (typeof model.ffn === 'number') resolveExpertWidths(model.moe, model.ffn, ctx);
  }

  ctx.spans.set('/evaluate', scope.evaluate?.nameSpan ?? scope.rootSpan);
  const evaluate = resolveObject(view.evaluate, evaluateSchema, '/evaluate', ctx) as unknown as Evaluate;
  if (!evaluate.perplexity) evaluate.perplexity = data[train.data] ? [{ data: train.data, split: 'valid' }] : [];
  const refs: [string, { data: string; label?: string }][] = [
    ...evaluate.perplexity.map((r, i) => [`/evaluate/perplexity/${i}`, r] as [string, { data: string }]),
    ...evaluate.experts.map((r, i) => [`/evaluate/experts/${i}`, r] as [string, { data: string; label: string }]),
  ];
  for (const [ptr, r] of refs) {
    const d = data[r.data];
    if (!d) {
      ctx.error(`evaluate names data set '${r.data}', which is not defined${didYouMean(r.data, dataNames)}`, ctx.spanOf(`${ptr}/data`), dataNames.length ? `defined data sets: ${dataNames.join(', ')}` : undefined);
    } else if (r.label !== undefined && !d.labels.includes(r.label)) {
      ctx.error(`data set '${r.data}' has no label '${r.label}'${didYouMean(r.label, d.labels)}`, ctx.spanOf(`${ptr}/label`), d.labels.length ? `'${r.data}' carries: ${d.labels.join(', ')}` : `'${r.data}' (source ${d.source.kind}) carries no labels`);
    }
  }

  return {
    version: 1,
    preset,
    data,
    model: model as Model,
    train: train as Train,
    evaluate,
    sweep: null,
  };
}
