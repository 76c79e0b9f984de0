// A seeded mutation fuzzer of the .moe front end, shared by the fuzz test in `npm test` and the
// longer `npm run fuzz`. Mutants come from every pipeline in pipelines/: byte edits, grammar
// pieces, and the inputs of issue 21 (deep nesting, huge and non-finite numbers, long lists,
// prototype names, control characters). Each mutant must give diagnostics, never an exception:
// no internal error, no stack trace, a place (file:line:col) on every diagnostic, within a time bound.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadPipeline } from '../../compiler/frontend/index.js';
import { readFromDisk } from '../../compiler/frontend/load.js';
import { rng } from '../../compiler/reference/random.js';
import { formatFile } from '../../grammar/format.js';
import { parseSource } from '../../grammar/parse.js';

const pieces = ['{', '}', '[', ']', '(', ')', ',', ';', '\n', '"', '#', '==', '!=', '5%', '4x', '-1', '0', '1e9', '2.5', 'in', 'when', 'extends', 'import',
  'moe', 'model', 'data', 'train', 'sweep', 'preset', 'evaluate', 'zip', 'seeds', 'baseline', 'dense', 'same', 'total', 'label(', 'router', 'top', 'experts',
  'model.moe.top', 'data.wiki.context', 'wiki.valid', 'by', 'language', 'dropless', 'sequence(prefix 999)', 'cosine(dim 0)', 'x',
  '__proto__', 'constructor', 'toString', '1e309', '-1e309', '1e7', '4294967296', '0.0000001', '65536', 'NaN', 'Infinity', '"/dev/zero"', '"../x.moe"',
  'import "/etc/passwd"', 'import "common.moe"', 'source text "/dev/zero"', 'valid 0', 'accumulate 1e9', '\u0000', '\u001b[31m', '\u00e9', '\ud83d\ude00', '\t', '\r\n'];
const numbers = ['0', '-1', '1e9', '2.5', '1e309', '1e7', '4294967296', '65536', '0.5', '3'];

/** Cap a mutant's size: a mutation may grow a file, never without bound. */
const MAX_MUTANT = 200_000;

function deep(r: () => number): string {
  const open = ['[', 'a(', 'moe { ', 'label(', '{'][Math.floor(r() * 5)]!;
  const n = [10, 63, 64, 65, 410, 547, 781][Math.floor(r() * 7)]!;
  const close = r() < 0.5 ? '' : (open === '[' ? ']' : open.endsWith('(') ? ')' : '}').repeat(n);
  return open.repeat(n) + close;
}

function longList(r: () => number): string {
  const n = [64, 300][Math.floor(r() * 2)]!;
  return `[${Array.from({ length: n }, (_, i) => String(i)).join(', ')}]`;
}

/** One to four edits of `text`; `longLists` lets an edit put a list of hundreds of values (a sweep of hundreds of trials: slow, so only in `npm run fuzz`). */
export function mutate(text: string, r: () => number, opts: { longLists?: boolean } = {}): string {
  let t = text;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (t.length + 1));
    const op = Math.floor(r() * 9);
    if (op === 0) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(r() * 5));
    else if (op === 1) t = t.slice(0, at) + String.fromCharCode(32 + Math.floor(r() * 95)) + t.slice(at);
    else if (op === 2) t = t.slice(0, at) + pieces[Math.floor(r() * pieces.length)] + t.slice(at);
    else if (op === 3) {
      const b = Math.floor(r() * t.length);
      const chars = t.split('');
      [chars[at], chars[b]] = [chars[b] ?? '', chars[at] ?? ''];
      t = chars.join('');
    } else if (op === 4) {
      // swap two whitespace-separated tokens
      const words = t.split(/(\s+)/);
      const a = Math.floor(r() * words.length);
      const b = Math.floor(r() * words.length);
      [words[a], words[b]] = [words[b] ?? '', words[a] ?? ''];
      t = words.join('');
    } else if (op === 5) {
      // replace a number with another
      let k = Math.floor(r() * 8);
      t = t.replace(/\d+(\.\d+)?/g, (m) => (k-- === 0 ? numbers[Math.floor(r() * numbers.length)]! : m));
    } else if (op === 6) t = t.slice(0, at) + deep(r) + t.slice(at);
    else if (op === 7 && opts.longLists) t = t.replace(/\[[^\]\n]*\]/, () => longList(r));
    else t = t.slice(0, at) + String.fromCharCode(Math.floor(r() * 32)) + t.slice(at);
    if (t.length > MAX_MUTANT) t = t.slice(0, MAX_MUTANT);
  }
  return t;
}

export interface Finding { file: string; mutant: string; problem: string }

export interface FuzzStats { mutants: number; withErrors: number; slowest: number; seconds: number; findings: Finding[] }

const STACK = /\n\s+at .+:\d+:\d+|\bat (file|node):/;

/** The problems of one front-end run on a mutant (empty when all is well). */
export function checkMutant(file: string, mutant: string, opts: { validateTrials: boolean; timeBoundMs: number }): { problems: string[]; ms: number; ok: boolean } {
  const problems: string[] = [];
  const read = (f: string) => (path.resolve(f) === path.resolve(file) ? mutant : readFromDisk(f));
  const t0 = performance.now();
  let res: ReturnType<typeof loadPipeline>;
  try {
    res = loadPipeline(file, { readFile: read, validateTrials: opts.validateTrials });
  } catch (e) {
    return { problems: [`loadPipeline threw: ${(e as Error).stack}`], ms: performance.now() - t0, ok: false };
  }
  const ms = performance.now() - t0;
  if (ms > opts.timeBoundMs) problems.push(`took ${ms.toFixed(0)} ms, over the bound of ${opts.timeBoundMs} ms`);
  for (const d of res.diagnostics) {
    if (typeof d.message !== 'string' || !d.message) problems.push('a diagnostic without a message');
    else if (d.message.includes('internal error')) problems.push(`internal error: ${d.message}`);
    else if (STACK.test(d.message) || (d.hint && STACK.test(d.hint))) problems.push(`stack trace in: ${d.message}`);
    if (!d.span) problems.push(`no location: ${d.message}`);
    else if (!(d.span.line >= 1 && d.span.col >= 1)) problems.push(`bad location ${d.span.line}:${d.span.col}: ${d.message}`);
  }
  if (!res.ok && !res.diagnostics.some((d) => d.severity === 'error')) problems.push('not ok, but no error reported');
  // fmt never throws on what parses, and stays a fixed point.
  const p = parseSource(mutant, file);
  if (p.diagnostics.length === 0) {
    try {
      const out = formatFile(p.ast);
      if (formatFile(parseSource(out, file).ast) !== out) problems.push('fmt is not idempotent');
    } catch (e) {
      problems.push(`fmt threw: ${(e as Error).message}`);
    }
  }
  return { problems, ms, ok: res.ok };
}

/** `count` mutants spread over `files`, seeded by `seed`. */
export function fuzzFrontEnd(files: string[], count: number, seed: number, opts: { timeBoundMs: number; maxFindings?: number; longLists?: boolean }): FuzzStats {
  const t0 = performance.now();
  const perFile = Math.ceil(count / files.length);
  const stats: FuzzStats = { mutants: 0, withErrors: 0, slowest: 0, seconds: 0, findings: [] };
  for (const [fi, file] of files.entries()) {
    const text = readFileSync(file, 'utf8');
    const r = rng(seed + fi);
    for (let i = 0; i < perFile; i++) {
      const m = mutate(text, r, { longLists: opts.longLists ?? false });
      const c = checkMutant(file, m, { validateTrials: i % 8 === 0, timeBoundMs: opts.timeBoundMs });
      stats.mutants++;
      if (!c.ok) stats.withErrors++;
      stats.slowest = Math.max(stats.slowest, c.ms);
      for (const problem of c.problems) if (stats.findings.length < (opts.maxFindings ?? 20)) stats.findings.push({ file, mutant: m, problem });
    }
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return stats;
}
