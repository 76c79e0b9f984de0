// Presets and sweeps as overrides of the merged trees: each path checked against the schema, then
// applied to a View of the scope (the selected model, train, data and evaluate trees).
import { didYouMean, error, type Diagnostic } from '../../grammar/diagnostics.js';
import type { Span } from '../../grammar/span.js';
import type { Def, Scope } from './load.js';
import { blockKeys, blockSchemas, dataSchema, keyName, modelSchema, propName, type JsonSchema } from './schema.js';
import { getPath, setPath, type Entry, type Tree } from './tree.js';
import type { Override } from './resolve-context.js';

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
