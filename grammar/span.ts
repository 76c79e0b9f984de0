// A place in a source file. Offsets are 0-based, `end` exclusive; lines and columns 1-based.
export interface Span {
  file: string;
  start: number;
  end: number;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
}

/** Minimal shape of a Chevrotain token, so this module does not depend on Chevrotain. */
export interface TokenLike {
  image: string;
  startOffset: number;
  endOffset?: number;
  startLine?: number;
  startColumn?: number;
  endLine?: number;
  endColumn?: number;
}

export function tokenSpan(file: string, t: TokenLike): Span {
  const end = (t.endOffset ?? t.startOffset + t.image.length - 1) + 1;
  return {
    file,
    start: t.startOffset,
    end,
    line: t.startLine ?? 1,
    col: t.startColumn ?? 1,
    endLine: t.endLine ?? t.startLine ?? 1,
    endCol: (t.endColumn ?? t.startColumn ?? 1) + 1,
  };
}

/** The span from the start of `a` to the end of `b`. */
export function joinSpans(a: Span, b: Span): Span {
  return { file: a.file, start: a.start, end: b.end, line: a.line, col: a.col, endLine: b.endLine, endCol: b.endCol };
}

/** Offsets of the line starts of the last text asked about (diagnostics of one file come in a row). */
let lineIndex: { text: string; starts: number[] } | undefined;

function lineStarts(text: string): number[] {
  if (lineIndex?.text === text) return lineIndex.starts;
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  lineIndex = { text, starts };
  return starts;
}

/** The span of [start, end) in `text`, computing line and column (a binary search: many spans of one file stay linear). */
export function spanAt(file: string, text: string, start: number, end: number): Span {
  const starts = lineStarts(text);
  const pos = (off: number) => {
    // The last line start at or before `off`.
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= off) lo = mid; else hi = mid - 1;
    }
    return { line: lo + 1, col: off - starts[lo]! + 1 };
  };
  const a = pos(start);
  const b = pos(end);
  return { file, start, end, line: a.line, col: a.col, endLine: b.line, endCol: b.col };
}

/** A span for things that have no text (defaults, synthesized values). */
export function noSpan(file = '<default>'): Span {
  return { file, start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
}
