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

/** The span of [start, end) in `text`, computing line and column. */
export function spanAt(file: string, text: string, start: number, end: number): Span {
  const pos = (off: number) => {
    let line = 1;
    let last = -1;
    for (let i = 0; i < off && i < text.length; i++) if (text.charCodeAt(i) === 10) { line++; last = i; }
    return { line, col: off - last };
  };
  const a = pos(start);
  const b = pos(end);
  return { file, start, end, line: a.line, col: a.col, endLine: b.line, endCol: b.col };
}

/** A span for things that have no text (defaults, synthesized values). */
export function noSpan(file = '<default>'): Span {
  return { file, start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
}
