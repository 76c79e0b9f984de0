// Sweep expansion: product lines, zip blocks (paired values), conditional dimensions (`when`),
// seeds, and dense baselines matched on total or active parameters. Each trial gets a stable id
// (a short hash of its canonical resolved config: same file, same ids) and a readable name.
import { createHash } from 'node:crypto';
import type { Value } from '../../grammar/ast.js';
import { valueText } from '../../grammar/ast.js';
import { didYouMean, error, warning, type Diagnostic } from '../../grammar/diagnostics.js';
import type { Span } from '../../grammar/span.js';
import type { Def, Scope } from './load.js';
import { countParams, denseFfnFor, singleFiltersFor } from './params.js';
import { applyOverrides, checkPath, Ctx, resolveView, type Override } from './resolve.js';
import { pipelineSchema, propName, type JsonSchema } from './schema.js';
import { getPath, type Entry } from './tree.js';
import type { Comparison, Pipeline, SweepSpec, Trial, TrialConfig } from './types.js';
import { validatePipeline } from './validate.js';

/** The patch dimension when the trial trains on the synthetic cluster task (the patch model). */
function patchDim(p: Pipeline): number | undefined {
  const d = p.data[p.train.data];
  return d?.source.kind === 'clusters' ? d.synthetic.dim : undefined;
}

interface Param { path: string[]; values: Value[]; keySpan: Span }
interface Dim { kind: 'product' | 'zip'; params: Param[]; when: { path: string[]; op: '==' | '!='; value: Value } | null }
export interface ParsedSweep { dims: Dim[]; seeds: number[]; seedSpan: Span | undefined; baselines: ('total' | 'active')[]; spec: SweepSpec }

const sweepKeys = ['PATH in [...]', 'zip { ... }', 'seeds', 'baseline', 'compare'];

function parseParam(e: Entry, scope: Scope, ds: Diagnostic[], allowWhen: boolean): { param: Param; when: Dim['when'] } | undefined {
  const keys = e.key.split('.');
  if (keys.length === 1) {
    ds.push(error(`unknown sweep statement '${e.key}'${didYouMean(e.key, ['zip', 'seeds', 'baseline', 'compare'])}`, e.keySpan, `a sweep holds: ${sweepKeys.join(', ')}`));
    return undefined;
  }
  const bad = checkPath(keys, scope);
  if (bad) { ds.push(error(bad.message, e.keySpan, bad.hint)); return undefined; }
  if (e.block) { ds.push(error(`a sweep line takes no block`, e.block.span)); return undefined; }
  if (e.args.length > 1) { ds.push(error(`unexpected ',': put the values in a list, as in ${e.key} in [a, b]`, e.args[1]![0]?.span ?? e.keySpan)); return undefined; }
  const vs = e.args.flat();
  const [kw, list, w, wpath, op, wval, extra] = vs;
  if (!kw || kw.kind !== 'ident' || kw.name !== 'in') {
    ds.push(error(`expected 'in' after '${e.key}'`, kw?.span ?? e.keySpan, `write: ${e.key} in [VALUE, VALUE]`));
    return undefined;
  }
  if (!list || list.kind !== 'list') { ds.push(error(`expected a list of values after 'in'`, list?.span ?? kw.span, `write: ${e.key} in [VALUE, VALUE]`)); return undefined; }
  if (list.items.length === 0) { ds.push(error(`the list of values for '${e.key}' is empty`, list.span)); return undefined; }
  let when: Dim['when'] = null;
  if (w) {
    if (!allowWhen) { ds.push(error(`'when' is not allowed inside zip`, w.span)); return undefined; }
    if (w.kind !== 'ident' || w.name !== 'when') { ds.push(error(`unexpected '${valueText(w)}' after the list: expected 'when' or the end of the line`, w.span)); return undefined; }
    if (!wpath || wpath.kind !== 'ident' || !op || op.kind !== 'op' || !wval || extra) {
      ds.push(error(`a condition reads 'when PATH == VALUE' or 'when PATH != VALUE'`, (extra ?? wval ?? op ?? wpath ?? w).span));
      return undefined;
    }
    const cb = checkPath(wpath.path, scope);
    if (cb) { ds.push(error(cb.message, wpath.span, cb.hint)); return undefined; }
    when = { path: wpath.path, op: op.op, value: wval };
  }
  return { param: { path: keys, values: list.items, keySpan: e.keySpan }, when };
}

export function parseSweep(def: Def | undefined, scope: Scope, ds: Diagnostic[]): ParsedSweep | undefined {
  if (!def) return undefined;
  const dims: Dim[] = [];
  let seeds: number[] = [];
  let seedSpan: Span | undefined;
  const baselines: ('total' | 'active')[] = [];
  const compares: Entry[] = [];
  const swept = new Map<string, Span>();
  const noteSwept = (p: Param): boolean => {
    const k = p.path.join('.');
    const prev = swept.get(k);
    if (prev) { ds.push(error(`'${k}' is swept twice (first at line ${prev.line})`, p.keySpan)); return false; }
    swept.set(k, p.keySpan);
    return true;
  };
  for (const e of def.tree.entries) {
    if (e.key === 'seeds') {
      const vs = e.args.flat();
      const v = vs[0];
      if (vs.length !== 1 || !v) { ds.push(error(`'seeds' takes a count or a list`, vs[1]?.span ?? e.keySpan, 'write: seeds 3  or  seeds [1, 2, 3]')); continue; }
      if (v.kind === 'number' && Number.isInteger(v.value) && v.value >= 1 && v.value <= 10000) seeds = Array.from({ length: v.value }, (_, i) => i + 1);
      else if (v.kind === 'list' && v.items.length > 0 && v.items.every((x) => x.kind === 'number' && Number.isInteger(x.value) && x.value >= 0 && x.value <= 4294967295)) {
        seeds = v.items.map((x) => (x as { value: number }).value);
        if (new Set(seeds).size !== seeds.length) ds.push(error(`a seed is listed twice`, v.span));
      } else { ds.push(error(`'seeds' must be a count from 1 to 10000 or a list of whole numbers from 0 to 4294967295, found '${valueText(v)}'`, v.span)); continue; }
      seedSpan = e.span;
      continue;
    }
    if (e.key === 'baseline') {
      const vs = e.args.flat();
      let i = 0;
      if (vs[0]?.kind === 'ident' && vs[0].name === 'dense') i = 1;
      else { ds.push(error(`expected 'dense' after 'baseline'`, vs[0]?.span ?? e.keySpan, 'write: baseline dense same total, same active')); continue; }
      if (i >= vs.length) { ds.push(error(`'baseline dense' needs 'same total' or 'same active'`, vs[0]!.span, 'write: baseline dense same total, same active')); continue; }
      for (; i < vs.length; i += 2) {
        const a = vs[i]!;
        const b = vs[i + 1];
        if (a.kind !== 'ident' || a.name !== 'same' || !b || b.kind !== 'ident' || (b.name !== 'total' && b.name !== 'active')) {
          const bad = a.kind === 'ident' && a.name === 'same' && b ? b : a;
          const word = valueText(bad);
          ds.push(error(`expected 'same total' or 'same active', found '${word}'${a.kind === 'ident' && a.name === 'same' ? didYouMean(word, ['total', 'active']) : ''}`, bad.span, 'write: baseline dense same total, same active'));
          break;
        }
        if (!baselines.includes(b.name)) baselines.push(b.name);
      }
      continue;
    }
    if (e.key === 'compare') {
      compares.push(e);
      continue;
    }
    if (e.key === 'zip') {
      if (!e.block || e.args.length) { ds.push(error(`'zip' takes a block of paired sweep lines: zip { PATH in [...]  PATH in [...] }`, e.args[0]?.[0]?.span ?? e.keySpan)); continue; }
      const params: Param[] = [];
      for (const z of e.block.entries) {
        const r = parseParam(z, scope, ds, false);
        if (r && noteSwept(r.param)) params.push(r.param);
      }
      if (params.length === 0) { ds.push(error(`empty zip block`, e.keySpan)); continue; }
      const n = params[0]!.values.length;
      const odd = params.find((p) => p.values.length !== n);
      if (odd) { ds.push(error(`zip pairs values one to one, but '${odd.path.join('.')}' has ${odd.values.length} value${odd.values.length === 1 ? '' : 's'} and '${params[0]!.path.join('.')}' has ${n}`, odd.keySpan)); continue; }
      dims.push({ kind: 'zip', params, when: null });
      continue;
    }
    const r = parseParam(e, scope, ds, true);
    if (r && noteSwept(r.param)) dims.push({ kind: 'product', params: [r.param], when: r.when });
  }
  const comparisons = compares.map((e) => parseCompare(e, dims, baselines.length > 0, ds)).filter((c): c is Comparison => c !== undefined);
  const spec: SweepSpec = {
    comparisons,
    dimensions: dims.map((d) => ({
      kind: d.kind,
      params: d.params.map((p) => ({ path: p.path.join('.'), values: p.values.map(valueText) })),
      when: d.when ? { path: d.when.path.join('.'), op: d.when.op, value: valueText(d.when.value) } : null,
    })),
    seeds,
    baselines,
  };
  return { dims, seeds, seedSpan, baselines, spec };
}

const compareSyntax = 'write: compare PATH [against VALUE] [by PATH, PATH ...], e.g. compare model.moe.unit against token by model.moe.top';

/** `compare PATH [against VALUE] [by PATH, ...]`, checked against the swept dimensions. */
function parseCompare(e: Entry, dims: Dim[], hasBaselines: boolean, ds: Diagnostic[]): Comparison | undefined {
  if (e.block) { ds.push(error(`'compare' takes no block`, e.block.span, compareSyntax)); return undefined; }
  const values = new Map<string, string[]>(dims.flatMap((d) => d.params.map((p) => [p.path.join('.'), p.values.map(valueText)] as [string, string[]])));
  if (hasBaselines) values.set('baseline', ['none', 'same total', 'same active']);
  const swept = [...values.keys()];
  const notSwept = (v: Value, what: string) => {
    const name = valueText(v);
    ds.push(error(`${what} '${name}' is not swept${didYouMean(name, swept)}`, v.span, swept.length ? `swept here: ${swept.join(', ')}` : 'sweep a path first: PATH in [A, B]'));
  };
  const vs = e.args.flat();
  const [target, ...rest] = vs;
  if (!target || target.kind !== 'ident') { ds.push(error(`'compare' needs a swept path`, target?.span ?? e.keySpan, compareSyntax)); return undefined; }
  const path = target.path.join('.');
  if (!values.has(path)) { notSwept(target, 'compare:'); return undefined; }
  let reference: string | null = null;
  let i = 0;
  if (rest[i]?.kind === 'ident' && (rest[i] as { name: string }).name === 'against') {
    const v = rest[i + 1];
    if (!v || v.kind === 'list') { ds.push(error(`'against' needs one of the values of '${path}'`, (v ?? rest[i]!).span, compareSyntax)); return undefined; }
    reference = valueText(v);
    if (!values.get(path)!.includes(reference)) {
      ds.push(error(`'${reference}' is not a value of '${path}'${didYouMean(reference, values.get(path)!)}`, v.span, `its values: ${values.get(path)!.join(', ')}`));
      return undefined;
    }
    i += 2;
  }
  const by: string[] = [];
  if (rest[i]?.kind === 'ident' && (rest[i] as { name: string }).name === 'by') {
    const held = rest.slice(i + 1);
    if (!held.length) { ds.push(error(`'by' needs the swept paths to hold fixed`, rest[i]!.span, compareSyntax)); return undefined; }
    for (const h of held) {
      if (h.kind !== 'ident') { ds.push(error(`expected a swept path after 'by', found '${valueText(h)}'`, h.span, compareSyntax)); return undefined; }
      const hp = h.path.join('.');
      if (hp === path) { ds.push(error(`'${hp}' is the compared path; 'by' names the others to hold fixed`, h.span, compareSyntax)); return undefined; }
      if (!values.has(hp)) { notSwept(h, "'by':"); return undefined; }
      if (!by.includes(hp)) by.push(hp);
    }
  } else if (rest[i]) {
    ds.push(error(`unexpected '${valueText(rest[i]!)}' in 'compare': expected 'against' or 'by'`, rest[i]!.span, compareSyntax));
    return undefined;
  }
  return { path, reference, by };
}

/** JSON with object keys sorted: the canonical form that trial ids hash. */
export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((x as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(x) ?? 'null';
}

/**
 * A trial's id: a hash of its configuration without the settings left at their schema default, so
 * a key added to the language later (with a default that keeps old behaviour) leaves the ids of
 * existing runs, and so their --resume, intact. A changed default cannot mix two runs: --resume
 * compares the full config.json and refuses a different one.
 */
export function trialId(config: TrialConfig): string {
  return createHash('sha256').update(canonicalJson(withoutDefaults(config, pipelineSchema))).digest('hex').slice(0, 10);
}

/** A trial configuration without the settings left at their schema default: what ids hash and resumes compare. */
export function configWithoutDefaults(config: unknown): unknown {
  return withoutDefaults(config, pipelineSchema);
}

function withoutDefaults(x: unknown, s: JsonSchema | undefined): unknown {
  if (!s || !x || typeof x !== 'object' || Array.isArray(x)) return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) {
    const sub = s.properties?.[k] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
    if (sub && 'default' in sub && canonicalJson(v) === canonicalJson(sub.default)) continue;
    out[k] = withoutDefaults(v, sub);
  }
  return out;
}

interface Pending { overrides: Override[]; parts: [string, string][]; values: Map<string, string> }

/** The text of the base value at a language path, for `when` conditions. */
function baseText(path: string[], base: Pipeline, scope: Scope, view: ReturnType<typeof applyOverrides>): string {
  const [section, ...rest] = path;
  let e: Entry | undefined;
  if (section === 'train' || section === 'evaluate') e = getPath(view[section], rest);
  else if (section === 'model') e = getPath(view.model.get(base.model.name), rest[0] && view.model.has(rest[0]) ? rest.slice(1) : rest);
  else if (section === 'data') e = rest[0] && view.data.has(rest[0]) ? getPath(view.data.get(rest[0]), rest.slice(1)) : undefined;
  const v = e?.args[0]?.[0];
  if (v) return valueText(v);
  let x: unknown = base;
  const keys = section === 'model' && rest[0] && scope.model.has(rest[0]) ? ['model', ...rest.slice(1)] : path;
  for (const k of keys) x = x && typeof x === 'object' ? (x as Record<string, unknown>)[propName(k)] : undefined;
  if (keys[keys.length - 1] === 'capacity' && (x as unknown) !== undefined) {
    let moe: unknown = base.model.moe;
    if (moe && (moe as { dropless?: boolean }).dropless) return 'dropless';
  }
  return typeof x === 'string' ? x : JSON.stringify(x ?? null);
}

export interface ExpandResult { trials: Trial[]; diagnostics: Diagnostic[] }

/** Expand the sweep into trials, resolving and validating each (diagnostics point at the sweep values). */
/** The most trials one file may expand to (docs/LANGUAGE.md states it): checking is linear in it. */
export const MAX_TRIALS = 20000;

export function expand(scope: Scope, baseOverrides: Override[], base: Pipeline, sweep: ParsedSweep | undefined, preset: string | null, opts: { validate?: boolean } = {}): ExpandResult {
  const diagnostics: Diagnostic[] = [];
  const validate = opts.validate ?? true;
  const baseView = applyOverrides(scope, baseOverrides);
  let pending: Pending[] = [{ overrides: [], parts: [], values: new Map() }];
  const dims = sweep?.dims ?? [];
  // Short names: the last path segment unless two swept paths share it.
  const lastCount = new Map<string, number>();
  for (const d of dims) for (const p of d.params) { const l = p.path[p.path.length - 1]!; lastCount.set(l, (lastCount.get(l) ?? 0) + 1); }
  const short = (p: string[]) => ((lastCount.get(p[p.length - 1]!) ?? 0) > 1 ? p.join('.') : p[p.length - 1]!);
  const LIMIT = MAX_TRIALS;
  const seedCount = Math.max(1, sweep?.seeds.length ?? 0);
  const tooMany = (span: Span | undefined, at: string) => {
    diagnostics.push(error(`the sweep expands to more than ${LIMIT} trials (${at})`, span, `sweep fewer values or fewer dimensions: one file holds at most ${LIMIT} trials`));
    return { trials: [], diagnostics };
  };
  for (const d of dims) {
    const next: Pending[] = [];
    const n = d.params[0]!.values.length;
    for (const t of pending) {
      if (d.when) {
        const k = d.when.path.join('.');
        const cur = t.values.get(k) ?? baseText(d.when.path, base, scope, baseView);
        const want = valueText(d.when.value);
        if ((cur === want) !== (d.when.op === '==')) { next.push(t); continue; }
      }
      for (let i = 0; i < n; i++) {
        const ov = [...t.overrides];
        const parts = [...t.parts];
        const values = new Map(t.values);
        for (const p of d.params) {
          const v = p.values[i]!;
          const label = `${short(p.path)}=${valueText(v)}`;
          ov.push({ path: p.path, args: [[v]], keySpan: v.span, span: v.span, label });
          parts.push([short(p.path), valueText(v)]);
          values.set(p.path.join('.'), valueText(v));
        }
        next.push({ overrides: ov, parts, values });
      }
      // Stopped as soon as it is over: a product of long lists is never built whole.
      if (next.length * seedCount > LIMIT) return tooMany(d.params[0]!.keySpan, `at least ${next.length}${seedCount > 1 ? ` × ${seedCount} seeds` : ''} by this dimension`);
    }
    pending = next;
  }
  if (pending.length * seedCount > LIMIT) return tooMany(sweep?.seedSpan, `${pending.length} × ${seedCount} seeds`);
  const seeds = sweep?.seeds.length ? sweep.seeds : [];
  if (seeds.length) {
    const sp = sweep!.seedSpan!;
    pending = pending.flatMap((t) => seeds.map((s) => {
      const v: Value = { kind: 'number', value: s, raw: String(s), span: sp };
      return { overrides: [...t.overrides, { path: ['train', 'seed'], args: [[v]], keySpan: sp, span: sp, label: `seed=${s}` }], parts: [...t.parts, ['seed', String(s)] as [string, string]], values: t.values };
    }));
  }
  const trials: Trial[] = [];
  const byId = new Map<string, Trial>();
  const add = (t: Omit<Trial, 'index'>, span: Span | undefined): void => {
    const prev = byId.get(t.id);
    if (prev) {
      if (t.baseline === null) diagnostics.push(warning(`trials '${prev.name}' and '${t.name}' are identical; only the first runs`, span));
      return;
    }
    const trial = { ...t, index: trials.length };
    byId.set(t.id, trial);
    trials.push(trial);
  };
  const named = (parts: [string, string][]) => (parts.length ? parts.map(([k, v]) => `${k}=${v}`).join(',') : 'base');
  for (const t of pending) {
    let name = named(t.parts);
    const ctx = new Ctx(t.overrides.length ? name : undefined);
    let p: Pipeline;
    if (t.overrides.length === 0) p = base;
    else {
      p = resolveView(scope, applyOverrides(scope, [...baseOverrides, ...t.overrides]), preset, ctx);
      if (validate) validatePipeline(p, ctx);
      diagnostics.push(...ctx.diagnostics);
      if (ctx.diagnostics.some((d) => d.severity === 'error')) continue;
    }
    const config: TrialConfig = { ...p, sweep: null };
    // `expert=mlp` says nothing of the activation that sets the experts apart (Chen et al.'s cubic
    // experts vs linear ones): the name carries it.
    const moe = p.model.moe;
    if (moe && t.parts.some(([k, v]) => k === 'expert' && v === 'mlp')) name = named(t.parts.map(([k, v]) => (k === 'expert' && v === 'mlp' ? [k, `mlp(${moe.activation})`] : [k, v])));
    const params: Record<string, string> = {};
    for (const o of t.overrides) params[o.path.join('.')] = valueText(o.args[0]![0]!);
    add({ id: trialId(config), name, params, seed: p.train.seed, baseline: null, matches: null, params_count: countParams(p.model, patchDim(p), p.train.batch), config }, sweep?.dims[0]?.params[0]?.keySpan);
  }
  if (sweep?.baselines.length) {
    for (const moeTrial of trials.slice()) {
      const m = moeTrial.config.model;
      if (!m.moe) continue;
      for (const kind of sweep.baselines) {
        const target = kind === 'total' ? moeTrial.params_count.total : moeTrial.params_count.active;
        // The cluster task's baseline is the paper's single model: one expert, filters matched.
        const pd = patchDim(moeTrial.config);
        const dense = pd === undefined ? { ...m, moe: null, ffn: 1 } : { ...m, moe: { ...m.moe, experts: 1, top: 1 }, ffn: singleFiltersFor(pd, target) };
        if (pd === undefined) dense.ffn = denseFfnFor(dense, target);
        const config: TrialConfig = { ...moeTrial.config, model: dense };
        const seedPart = seeds.length ? `,seed=${moeTrial.seed}` : '';
        // The name says which MoE configuration the baseline matches (seed left to its own part).
        const of = moeTrial.name.split(',').filter((x) => !/^seed=\d+$/.test(x)).join(',');
        let name = `dense=same-${kind}(${of}),ffn=${dense.ffn}${seedPart}`;
        const id = trialId(config);
        if (!byId.has(id) && trials.some((x) => x.name === name)) name = `dense=same-${kind},ffn=${dense.ffn},for=${moeTrial.name}`;
        add({
          id, name, params: { ...moeTrial.params, baseline: `same ${kind}` },
          seed: moeTrial.seed, baseline: kind, matches: moeTrial.name, params_count: countParams(dense, pd), config,
        }, undefined);
      }
    }
  }
  return { trials, diagnostics };
}
