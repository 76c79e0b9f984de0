// Text -> AST with diagnostics. Never throws for any input.
import type { IRecognitionException, IToken } from 'chevrotain';
import type { MoeFile } from './ast.js';
import { AstBuilder } from './cst-to-ast.js';
import { error, type Diagnostic } from './diagnostics.js';
import { lex } from './lexer.js';
import { parser } from './parser.js';
import { spanAt, tokenSpan } from './span.js';

/**
 * The deepest nesting of '{', '[' and '(' (together) a file may have. The parser and the AST
 * builder recurse once per level; a bound far above any real pipeline (which nest 3 or 4 deep)
 * keeps them off the stack limit and keeps checking linear in the file's size.
 */
export const MAX_NESTING = 64;

const opens = new Set(['LBrace', 'LBrack', 'LParen']);
const closes = new Set(['RBrace', 'RBrack', 'RParen']);

/** The first token that opens a level past MAX_NESTING, if any. */
function tooDeep(tokens: readonly IToken[]): IToken | undefined {
  let depth = 0;
  for (const t of tokens) {
    const n = t.tokenType.name;
    if (opens.has(n)) { if (++depth > MAX_NESTING) return t; }
    else if (closes.has(n) && depth > 0) depth--;
  }
  return undefined;
}

export interface ParseResult {
  ast: MoeFile;
  diagnostics: Diagnostic[];
}

export function parseSource(text: string, file: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  try {
    const { tokens, comments, problems } = lex(text);
    for (const p of problems) diagnostics.push(error(p.message, spanAt(file, text, p.offset, p.offset + p.length)));
    const deep = tooDeep(tokens);
    if (deep) {
      diagnostics.push(error(`nesting deeper than ${MAX_NESTING} levels of '{', '[' and '('`, tokenSpan(file, deep),
        `moec reads at most ${MAX_NESTING} nested blocks, lists and calls; a pipeline needs 3 or 4: close the brackets opened before this one`));
      return { ast: { file, items: [], comments: [] }, diagnostics };
    }
    parser.input = tokens;
    const cst = parser.file();
    const errs: IRecognitionException[] = parser.errors;
    for (const e of errs) diagnostics.push(error(e.message, recognitionSpan(e, file, text)));
    const builder = new AstBuilder(file);
    const items = cst ? builder.fileNode(cst) : [];
    diagnostics.push(...builder.diagnostics);
    const ast: MoeFile = { file, items, comments: comments.map((c) => ({ text: c.image, span: tokenSpan(file, c) })) };
    return { ast, diagnostics };
  } catch (e) {
    // A bug, not a user mistake; still reported as a diagnostic so no stack trace reaches the user.
    diagnostics.push(error(`internal error while parsing: ${(e as Error).message}`, spanAt(file, text, 0, 0)));
    return { ast: { file, items: [], comments: [] }, diagnostics };
  }
}

function recognitionSpan(e: IRecognitionException, file: string, text: string) {
  const t = e.token;
  if (!t || Number.isNaN(t.startOffset) || t.tokenType?.name === 'EOF') {
    // At end of file: point just past the last non-space character.
    let end = text.length;
    while (end > 0 && /\s/.test(text[end - 1]!)) end--;
    return spanAt(file, text, end, end + 1);
  }
  if (t.tokenType?.name === 'Newline') return spanAt(file, text, t.startOffset, t.startOffset + 1);
  return tokenSpan(file, t);
}
