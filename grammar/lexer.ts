// Tokens of the .moe language. Comments go to their own group (kept for `moec fmt`);
// newlines separate statements except inside [...] and (...), where they are dropped.
import { createToken, Lexer, type IToken, type TokenType } from 'chevrotain';

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\uFEFF]+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: 'comments' });
export const Newline = createToken({ name: 'Newline', pattern: /\n/, line_breaks: true, label: 'end of line' });
export const LBrace = createToken({ name: 'LBrace', pattern: /\{/, label: "'{'" });
export const RBrace = createToken({ name: 'RBrace', pattern: /\}/, label: "'}'" });
export const LBrack = createToken({ name: 'LBrack', pattern: /\[/, label: "'['" });
export const RBrack = createToken({ name: 'RBrack', pattern: /\]/, label: "']'" });
export const LParen = createToken({ name: 'LParen', pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: 'RParen', pattern: /\)/, label: "')'" });
export const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
export const Semi = createToken({ name: 'Semi', pattern: /;/, label: "';'" });
export const Op = createToken({ name: 'Op', pattern: /==|!=/, label: "'==' or '!='" });
export const StringLit = createToken({ name: 'StringLit', pattern: /"(?:[^"\\\n]|\\.)*"/, label: 'a string' });
export const BadString = createToken({ name: 'BadString', pattern: /"(?:[^"\\\n]|\\.)*/, label: 'an unterminated string' });
const num = String.raw`-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?`;
export const Percent = createToken({ name: 'Percent', pattern: new RegExp(`${num}%`), label: 'a percentage' });
export const Multiplier = createToken({ name: 'Multiplier', pattern: new RegExp(`${num}x(?![A-Za-z0-9_])`), label: 'a multiplier' });
export const NumberLit = createToken({ name: 'NumberLit', pattern: new RegExp(`${num}(?![A-Za-z0-9_.])`), label: 'a number' });
export const BadNumber = createToken({ name: 'BadNumber', pattern: /-?[0-9.][A-Za-z0-9_.]*/, label: 'a malformed number' });
const seg = '[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*';
export const Ident = createToken({ name: 'Ident', pattern: new RegExp(`${seg}(?:\\.${seg})*`), label: 'a name' });
export const Import = createToken({ name: 'Import', pattern: /import/, longer_alt: Ident, label: "'import'" });

export const allTokens: TokenType[] = [
  WhiteSpace, Comment, Newline, LBrace, RBrace, LBrack, RBrack, LParen, RParen, Comma, Semi, Op,
  StringLit, BadString, Percent, Multiplier, NumberLit, BadNumber, Import, Ident,
];

export const moeLexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false, skipValidations: true });

/** Control characters shown as escapes (a raw one prints as nothing, or moves the terminal's cursor). */
function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface LexProblem { offset: number; length: number; line: number; col: number; message: string }

export interface LexResult { tokens: IToken[]; comments: IToken[]; problems: LexProblem[] }

/** Lex `text`: drops newlines inside brackets, turns bad strings and numbers and stray characters into problems. */
export function lex(text: string): LexResult {
  const r = moeLexer.tokenize(text);
  const problems: LexProblem[] = r.errors.map((e) => {
    const ch = text.slice(e.offset, e.offset + Math.max(1, e.length));
    return {
      offset: e.offset, length: Math.max(1, e.length), line: e.line ?? 1, col: e.column ?? 1,
      message: `unexpected character${ch.length > 1 ? 's' : ''} '${printable(ch)}'`,
    };
  });
  const tokens: IToken[] = [];
  let depth = 0;
  for (const t of r.tokens) {
    const tt = t.tokenType;
    if (tt === BadString) {
      problems.push({ offset: t.startOffset, length: t.image.length, line: t.startLine ?? 1, col: t.startColumn ?? 1, message: 'unterminated string: add the closing " on the same line' });
      continue;
    }
    if (tt === BadNumber) {
      problems.push({ offset: t.startOffset, length: t.image.length, line: t.startLine ?? 1, col: t.startColumn ?? 1, message: `malformed number '${t.image}'` });
      continue;
    }
    if (tt === LBrack || tt === LParen) depth++;
    else if ((tt === RBrack || tt === RParen) && depth > 0) depth--;
    else if (tt === LBrace || tt === RBrace) depth = 0;
    if (tt === Newline && depth > 0) continue;
    tokens.push(t);
  }
  problems.sort((a, b) => a.offset - b.offset);
  return { tokens, comments: r.groups['comments'] ?? [], problems };
}
