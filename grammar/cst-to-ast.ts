// The CST visitor: Chevrotain's concrete syntax tree -> the typed AST (grammar/ast.ts).
// Defensive throughout: with error recovery on, any child may be missing.
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type { Block, Definition, DefinitionKind, ImportDecl, Statement, TopItem, Value } from './ast.js';
import { definitionKinds } from './ast.js';
import { didYouMean, error, type Diagnostic } from './diagnostics.js';
import { joinSpans, tokenSpan, type Span } from './span.js';

function isToken(e: CstElement): e is IToken {
  return (e as IToken).image !== undefined;
}

/** Children of a node in source order. */
function ordered(node: CstNode): CstElement[] {
  const all: CstElement[] = [];
  for (const list of Object.values(node.children)) for (const e of list ?? []) all.push(e);
  const off = (e: CstElement): number => {
    if (isToken(e)) return e.startOffset;
    const o = e.location?.startOffset;
    return o !== undefined && !Number.isNaN(o) ? o : firstOffset(e);
  };
  return all.filter((e) => !(isToken(e) && Number.isNaN(e.startOffset))).sort((a, b) => off(a) - off(b));
}

function firstOffset(n: CstNode): number {
  let best = Infinity;
  for (const list of Object.values(n.children)) for (const e of list ?? []) {
    const o = isToken(e) ? e.startOffset : firstOffset(e);
    if (o < best) best = o;
  }
  return best;
}

function tokName(e: CstElement): string | undefined {
  return isToken(e) ? e.tokenType.name : undefined;
}

function unescape(raw: string): string {
  const body = raw.slice(1, -1);
  return body.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

export class AstBuilder {
  readonly diagnostics: Diagnostic[] = [];
  constructor(readonly file: string) {}

  private span(t: IToken): Span {
    return tokenSpan(this.file, t);
  }

  fileNode(node: CstNode): TopItem[] {
    const items: TopItem[] = [];
    for (const e of ordered(node)) {
      if (isToken(e)) continue;
      if (e.name === 'importDecl') {
        const imp = this.importDecl(e);
        if (imp) items.push(imp);
      } else if (e.name === 'statement') {
        const st = this.statement(e);
        if (st) {
          const def = this.definition(st);
          if (def) items.push(def);
        }
      }
    }
    return items;
  }

  private importDecl(node: CstNode): ImportDecl | undefined {
    const kw = node.children['Import']?.[0] as IToken | undefined;
    const str = node.children['StringLit']?.[0] as IToken | undefined;
    if (!kw || !str || Number.isNaN(str.startOffset)) return undefined;
    const pathSpan = this.span(str);
    return { kind: 'import', path: unescape(str.image), pathSpan, span: joinSpans(this.span(kw), pathSpan) };
  }

  /** A top-level statement must be `KIND [NAME] [extends BASE] { ... }`. */
  private definition(st: Statement): Definition | undefined {
    if (!(definitionKinds as readonly string[]).includes(st.key)) {
      this.diagnostics.push(error(`unknown block '${st.key}'${didYouMean(st.key, [...definitionKinds, 'import'])}`, st.keySpan,
        `a file holds: import "file.moe", ${definitionKinds.join(', ')}`));
      return undefined;
    }
    const defKind = st.key as DefinitionKind;
    const args = st.args.flat();
    if (st.args.length > 1) {
      this.diagnostics.push(error(`unexpected ',' in the header of the ${defKind} block`, args[0]?.span ?? st.keySpan));
      return undefined;
    }
    const needsName = defKind === 'data' || defKind === 'model' || defKind === 'preset';
    let name: Definition['name'];
    let base: Definition['base'];
    let i = 0;
    const a0 = args[0];
    if (needsName) {
      if (!a0 || a0.kind !== 'ident' || a0.path.length !== 1) {
        this.diagnostics.push(error(`${defKind} block needs a name, as in '${defKind} ${defKind === 'data' ? 'wiki' : defKind === 'model' ? 'mini' : 'small'} { ... }'`, a0?.span ?? st.keySpan));
        return undefined;
      }
      name = { text: a0.name, span: a0.span };
      i = 1;
    }
    const a1 = args[i];
    if (a1) {
      const a2 = args[i + 1];
      if (needsName && a1.kind === 'ident' && a1.name === 'extends' && a2 && a2.kind === 'ident' && a2.path.length === 1 && args.length === i + 2) {
        base = { text: a2.name, span: a2.span };
      } else if (needsName && a1.kind === 'ident' && a1.name === 'extends') {
        this.diagnostics.push(error(`'extends' needs the name of a ${defKind} block`, a2?.span ?? a1.span));
        return undefined;
      } else {
        const msg = needsName
          ? `unexpected '${textOf(a1)}' after the ${defKind} name: write '${defKind} ${name!.text} { ... }' or '${defKind} ${name!.text} extends OTHER { ... }'`
          : `${defKind} block takes no name: write '${defKind} { ... }'`;
        this.diagnostics.push(error(msg, a1.span));
        return undefined;
      }
    }
    if (!st.block) {
      this.diagnostics.push(error(`expected '{' to open the ${defKind} block`, { ...st.span, start: st.span.end, col: st.span.endCol, line: st.span.endLine }));
      return undefined;
    }
    return { kind: 'definition', defKind, kindSpan: st.keySpan, name, base, body: st.block, span: st.span };
  }

  statement(node: CstNode): Statement | undefined {
    const keyTok = node.children['Ident']?.[0] as IToken | undefined;
    if (!keyTok || Number.isNaN(keyTok.startOffset)) return undefined;
    const keySpan = this.span(keyTok);
    const groups: Value[][] = [[]];
    let block: Block | undefined;
    let end = keySpan;
    for (const e of ordered(node)) {
      if (e === keyTok) continue;
      if (isToken(e)) {
        if (tokName(e) === 'Comma') { groups.push([]); end = this.span(e); }
        continue;
      }
      if (e.name === 'value') {
        const v = this.value(e);
        if (v) { groups[groups.length - 1]!.push(v); end = v.span; }
      } else if (e.name === 'block') {
        const b = this.block(e);
        if (b) { block = b; end = b.span; }
      }
    }
    const args = groups.length === 1 && groups[0]!.length === 0 ? [] : groups;
    return { kind: 'statement', key: keyTok.image, keyPath: keyTok.image.split('.'), keySpan, args, block, span: joinSpans(keySpan, end) };
  }

  block(node: CstNode): Block | undefined {
    const l = node.children['LBrace']?.[0] as IToken | undefined;
    const r = node.children['RBrace']?.[0] as IToken | undefined;
    if (!l || Number.isNaN(l.startOffset)) return undefined;
    const statements: Statement[] = [];
    for (const s of (node.children['statement'] ?? []) as CstNode[]) {
      const st = this.statement(s);
      if (st) statements.push(st);
    }
    statements.sort((a, b) => a.span.start - b.span.start);
    const last = r && !Number.isNaN(r.startOffset) ? this.span(r) : (statements[statements.length - 1]?.span ?? this.span(l));
    return { statements, span: joinSpans(this.span(l), last) };
  }

  value(node: CstNode): Value | undefined {
    for (const e of ordered(node)) {
      if (isToken(e)) {
        const span = this.span(e);
        switch (e.tokenType.name) {
          case 'NumberLit': return { kind: 'number', value: Number(e.image), raw: e.image, span };
          case 'Percent': return { kind: 'percent', value: Number(e.image.slice(0, -1)) / 100, raw: e.image, span };
          case 'Multiplier': return { kind: 'multiplier', value: Number(e.image.slice(0, -1)), raw: e.image, span };
          case 'StringLit': return { kind: 'string', value: unescape(e.image), raw: e.image, span };
          case 'Op': return { kind: 'op', op: e.image as '==' | '!=', span };
          default: return undefined;
        }
      }
      if (e.name === 'list') return this.list(e);
      if (e.name === 'nameOrCall') return this.nameOrCall(e);
    }
    return undefined;
  }

  private items(node: CstNode): Value[][] {
    const groups: Value[][] = [[]];
    for (const e of ordered(node)) {
      if (isToken(e)) { if (tokName(e) === 'Comma') groups.push([]); continue; }
      if (e.name === 'value') {
        const v = this.value(e);
        if (v) groups[groups.length - 1]!.push(v);
      }
    }
    return groups.length === 1 && groups[0]!.length === 0 ? [] : groups;
  }

  private list(node: CstNode): Value | undefined {
    const l = node.children['LBrack']?.[0] as IToken | undefined;
    const r = node.children['RBrack']?.[0] as IToken | undefined;
    if (!l || Number.isNaN(l.startOffset)) return undefined;
    const items = this.items(node).flat();
    const endSpan = r && !Number.isNaN(r.startOffset) ? this.span(r) : (items[items.length - 1]?.span ?? this.span(l));
    return { kind: 'list', items, span: joinSpans(this.span(l), endSpan) };
  }

  private nameOrCall(node: CstNode): Value | undefined {
    const id = node.children['Ident']?.[0] as IToken | undefined;
    if (!id || Number.isNaN(id.startOffset)) return undefined;
    const nameSpan = this.span(id);
    const lp = node.children['LParen']?.[0] as IToken | undefined;
    if (!lp || Number.isNaN(lp.startOffset)) return { kind: 'ident', name: id.image, path: id.image.split('.'), span: nameSpan };
    const rp = node.children['RParen']?.[0] as IToken | undefined;
    const args = this.items(node).filter((g) => g.length > 0);
    const endSpan = rp && !Number.isNaN(rp.startOffset) ? this.span(rp) : (args.flat().pop()?.span ?? this.span(lp));
    return { kind: 'call', name: id.image, nameSpan, args, span: joinSpans(nameSpan, endSpan) };
  }
}

function textOf(v: Value): string {
  switch (v.kind) {
    case 'ident': return v.name;
    case 'op': return v.op;
    case 'list': return '[...]';
    case 'call': return `${v.name}(...)`;
    default: return v.raw;
  }
}
