// `moec fmt`: the canonical layout of a .moe file. Two-space indentation, one statement per
// line, single spaces between values, `[a, b]` lists, a blank line between top-level blocks,
// blank lines inside blocks kept (at most one), and every comment kept: own-line comments
// stay above what followed them, trailing comments stay at the end of their line.
import type { Block, Comment, MoeFile, Statement, TopItem, Value } from './ast.js';
import { valueText } from './ast.js';

export function formatValue(v: Value): string {
  return valueText(v);
}

function argsText(args: Value[][]): string {
  return args.map((g) => g.map(formatValue).join(' ')).join(', ');
}

class Printer {
  private out: string[] = [];
  private ci = 0;
  private lastLine = 0;
  constructor(private readonly comments: Comment[]) {}

  /** Own-line comments that start before `offset`. */
  private leading(offset: number, indent: string): void {
    while (this.ci < this.comments.length && this.comments[this.ci]!.span.start < offset) {
      const c = this.comments[this.ci++]!;
      this.blankIfGap(c.span.line);
      this.out.push(indent + c.text.trimEnd());
      this.lastLine = c.span.line;
    }
  }

  /** A comment on source line `line` starting at or after `offset` and before `limit`: appended to the last output line. */
  private trailing(line: number, offset: number, limit: number): void {
    const c = this.comments[this.ci];
    if (c && c.span.line === line && c.span.start >= offset && c.span.start < limit) {
      this.out[this.out.length - 1] += `  ${c.text.trimEnd()}`;
      this.ci++;
    }
  }

  private blankIfGap(line: number): void {
    if (this.lastLine > 0 && line > this.lastLine + 1 && this.out.length > 0 && this.out[this.out.length - 1] !== '' && !this.out[this.out.length - 1]!.endsWith('{')) this.out.push('');
  }

  private blockBody(b: Block, indent: string, nextOffset: number): void {
    const inner = indent + '  ';
    b.statements.forEach((s, i) => this.statement(s, inner, b.statements[i + 1]?.span.start ?? b.span.end));
    // Comments before the closing brace stay inside the block.
    this.leading(b.span.end - 1, inner);
    this.out.push(`${indent}}`);
    this.lastLine = b.span.endLine;
    this.trailing(b.span.endLine, b.span.end, nextOffset);
  }

  statement(s: Statement, indent: string, nextOffset: number): void {
    this.leading(s.span.start, indent);
    this.blankIfGap(s.span.line);
    const head = s.args.length ? `${s.key} ${argsText(s.args)}` : s.key;
    this.header(head, indent, s.block, s.span, nextOffset);
  }

  private header(head: string, indent: string, block: Block | undefined, span: { line: number; end: number; endLine: number }, nextOffset: number): void {
    if (!block) {
      this.out.push(indent + head);
      this.lastLine = span.endLine;
      this.trailing(span.endLine, span.end, nextOffset);
      return;
    }
    const first = block.statements[0]?.span.start ?? block.span.end - 1;
    const hasInnerComment = this.ci < this.comments.length && this.comments[this.ci]!.span.start < block.span.end;
    if (block.statements.length === 0 && !hasInnerComment) {
      this.out.push(`${indent}${head} {}`);
      this.lastLine = block.span.endLine;
      this.trailing(block.span.endLine, block.span.end, nextOffset);
      return;
    }
    this.out.push(`${indent}${head} {`);
    this.lastLine = block.span.line;
    this.trailing(block.span.line, block.span.start, first);
    this.blockBody(block, indent, nextOffset);
  }

  top(item: TopItem, nextOffset: number, first: boolean): void {
    // A blank line between top-level blocks (consecutive imports stay together).
    if (!first && !(item.kind === 'import' && this.prevImport) && this.out.length > 0 && this.out[this.out.length - 1] !== '') this.out.push('');
    this.leading(item.span.start, '');
    this.blankIfGap(item.span.line);
    if (item.kind === 'import') {
      this.out.push(`import ${quote(item.path)}`);
      this.lastLine = item.span.endLine;
      this.trailing(item.span.endLine, item.span.end, nextOffset);
      this.prevImport = true;
      return;
    }
    this.prevImport = false;
    let head: string = item.defKind;
    if (item.name) head += ` ${item.name.text}`;
    if (item.base) head += ` extends ${item.base.text}`;
    this.header(head, '', item.body, item.span, nextOffset);
  }
  private prevImport = false;

  finish(): string {
    this.leading(Infinity, '');
    while (this.out.length && this.out[this.out.length - 1] === '') this.out.pop();
    return this.out.join('\n') + '\n';
  }
}

/** The canonical text of a parsed file. Idempotent: format(parse(format(x))) === format(x). */
export function formatFile(ast: MoeFile): string {
  const comments = [...ast.comments].sort((a, b) => a.span.start - b.span.start);
  const p = new Printer(comments);
  ast.items.forEach((item, i) => p.top(item, ast.items[i + 1]?.span.start ?? Infinity, i === 0));
  return p.finish();
}

/** A string literal of the .moe language (its escapes are \\ \" \n \t; JSON's \u0001 is not one). */
function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, '\\$&').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
}
