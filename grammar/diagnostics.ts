// Diagnostics: a message a researcher understands, the place it refers to, and how to render it
// (`file:line:col error: message`, the source line, and a ^^^ underline).
import type { Span } from './span.js';

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  severity: Severity;
  message: string;
  span: Span | undefined;
  hint?: string;
  /** The code of the rule that found it (compiler/rules' registry), where a rule did. */
  code?: string;
}

function diagnostic(severity: Severity, message: string, span: Span | undefined, hint?: string, code?: string): Diagnostic {
  const d: Diagnostic = { severity, message, span };
  if (hint !== undefined) d.hint = hint;
  if (code !== undefined) d.code = code;
  return d;
}

export function error(message: string, span: Span | undefined, hint?: string, code?: string): Diagnostic {
  return diagnostic('error', message, span, hint, code);
}

export function warning(message: string, span: Span | undefined, hint?: string, code?: string): Diagnostic {
  return diagnostic('warning', message, span, hint, code);
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

/** Levenshtein distance with transpositions counted as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => Array.from({ length: n + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[m]![n]!;
}

/** The closest candidate to `word`, if it is close enough to be a plausible misspelling. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    if (c === word) continue;
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) { best = c; bestD = d; }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.min(3, Math.floor(Math.max(word.length, best.length) / 3)));
  return bestD <= limit ? best : undefined;
}

/** ` (did you mean 'x'?)` or the empty string. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean '${c}'?)`;
}

/** Sort by file, then position; drop exact duplicates. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of ds) {
    const k = `${d.span?.file}:${d.span?.start}:${d.span?.end}:${d.severity}:${d.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(d);
  }
  return out.sort((a, b) => {
    const fa = a.span?.file ?? '';
    const fb = b.span?.file ?? '';
    if (fa !== fb) return fa < fb ? -1 : 1;
    return (a.span?.start ?? 0) - (b.span?.start ?? 0);
  });
}

/** `file:line:col` of a diagnostic (or just the file). */
export function where(d: Diagnostic): string {
  if (!d.span) return '';
  return `${d.span.file}:${d.span.line}:${d.span.col}`;
}

/** The text of line `line` (1-based), which holds `offset`: found from the offset, not by splitting the file (many diagnostics stay linear). */
function lineOf(text: string, offset: number, line: number): string {
  const o = Math.min(Math.max(0, offset), text.length);
  const a = text.lastIndexOf('\n', o - 1) + 1;
  if (o === 0 && line !== 1) return text.split('\n')[line - 1] ?? '';
  const b = text.indexOf('\n', a);
  return b < 0 ? text.slice(a) : text.slice(a, b);
}

/** Render one diagnostic with its source line underlined. `source` maps file names to their text. */
export function renderDiagnostic(d: Diagnostic, source: (file: string) => string | undefined, color = false): string {
  const red = (s: string) => (color ? `\x1b[31;1m${s}\x1b[0m` : s);
  const yellow = (s: string) => (color ? `\x1b[33;1m${s}\x1b[0m` : s);
  const label = d.severity === 'error' ? red('error') : yellow('warning');
  const head = d.span ? `${where(d)} ${label}: ${d.message}` : `${label}: ${d.message}`;
  const lines = [head];
  const text = d.span ? source(d.span.file) : undefined;
  if (d.span && text !== undefined) {
    const lineText = lineOf(text, d.span.start, d.span.line).replace(/\r$/, '').replace(/\t/g, ' ').replace(/[\x00-\x1f\x7f]/g, '\ufffd'); // a file's escape sequences never reach the terminal
    const num = String(d.span.line);
    const pad = ' '.repeat(num.length);
    let startCol = Math.max(1, d.span.col);
    let width = d.span.endLine === d.span.line ? Math.max(1, d.span.endCol - startCol) : Math.max(1, lineText.length - startCol + 1);
    // A long line (a minified list, a 10,000-deep nesting) is shown as a window around the place.
    const from = Math.max(0, startCol - 60);
    let shown = lineText.slice(from, from + 160);
    if (from > 0) shown = `…${shown}`;
    if (from + 160 < lineText.length) shown = `${shown}…`;
    startCol = startCol - from + (from > 0 ? 1 : 0);
    width = Math.min(width, 160);
    lines.push(` ${num} | ${shown}`);
    lines.push(` ${pad} | ${' '.repeat(startCol - 1)}${(d.severity === 'error' ? red : yellow)('^'.repeat(width))}`);
  }
  if (d.hint) lines.push(`  hint: ${d.hint}`);
  return lines.join('\n');
}

/** The one-line form used by tests: `line:col message`. */
export function shortForm(d: Diagnostic): string {
  return d.span ? `${d.span.line}:${d.span.col} ${d.message}` : d.message;
}
