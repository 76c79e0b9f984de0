// The .moe grammar: a Chevrotain CstParser that knows only structure, never meaning.
//   file      := (sep | importDecl | statement)*
//   importDecl:= 'import' STRING
//   statement := NAME (value | ',')* block?
//   block     := '{' (sep | statement)* '}'
//   value     := NUMBER | PERCENT | MULTIPLIER | STRING | NAME ('(' (value | ',')* ')')? | '[' (value | ',')* ']' | '==' | '!='
//   sep       := end of line | ';'
// Which names are blocks, keys or values is decided later (compiler/frontend/resolve.ts).
import { CstParser, EOF, type IParserErrorMessageProvider, type IToken, type TokenType } from 'chevrotain';
import {
  allTokens, Comma, Ident, Import, LBrace, LBrack, LParen, Multiplier, Newline, NumberLit, Op, Percent,
  RBrace, RBrack, RParen, Semi, StringLit,
} from './lexer.js';

function describe(t: IToken | undefined): string {
  if (!t || t.tokenType === EOF) return 'end of file';
  if (t.tokenType === Newline) return 'end of line';
  return `'${t.image}'`;
}

function labelOf(t: TokenType): string {
  return (t as { LABEL?: string }).LABEL ?? t.name;
}

export const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    if (expected === RBrace) return `expected '}' to close the block, found ${describe(actual)}`;
    if (expected === RBrack) return `expected ']' to close the list, found ${describe(actual)}`;
    if (expected === RParen) return `expected ')' to close the argument list, found ${describe(actual)}`;
    if (expected === EOF) return actual.tokenType === RBrace ? `unexpected '}': no block is open here` : `unexpected ${describe(actual)}`;
    if (expected === StringLit) return `expected a file name in quotes after 'import', found ${describe(actual)}`;
    return `expected ${labelOf(expected)}, found ${describe(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    if (firstRedundant.tokenType === RBrace) return `unexpected '}': no block is open here`;
    return `unexpected ${describe(firstRedundant)}`;
  },
  buildNoViableAltMessage({ actual }) {
    const t = (actual as unknown as IToken[][])[0]?.[0];
    return `unexpected ${describe(t)}: expected a setting name or a value`;
  },
  buildEarlyExitMessage({ actual }) {
    return `unexpected ${describe(actual[0])}`;
  },
};

export class MoeParser extends CstParser {
  constructor() {
    // Node offsets let the AST builder order children without walking subtrees (linear, not quadratic).
    super(allTokens, { recoveryEnabled: true, errorMessageProvider: messages, maxLookahead: 2, nodeLocationTracking: 'onlyOffset' });
    this.performSelfAnalysis();
  }

  file = this.RULE('file', () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(Newline) },
        { ALT: () => this.CONSUME(Semi) },
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.statement) },
      ]);
    });
  });

  importDecl = this.RULE('importDecl', () => {
    this.CONSUME(Import);
    this.CONSUME(StringLit);
  });

  statement = this.RULE('statement', () => {
    this.CONSUME(Ident);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.value) },
        { ALT: () => this.CONSUME(Comma) },
      ]);
    });
    this.OPTION(() => this.SUBRULE(this.block));
  });

  block = this.RULE('block', () => {
    this.CONSUME(LBrace);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(Newline) },
        { ALT: () => this.CONSUME(Semi) },
        { ALT: () => this.SUBRULE(this.statement) },
      ]);
    });
    this.CONSUME(RBrace);
  });

  value = this.RULE('value', () => {
    this.OR([
      { ALT: () => this.CONSUME(NumberLit) },
      { ALT: () => this.CONSUME(Percent) },
      { ALT: () => this.CONSUME(Multiplier) },
      { ALT: () => this.CONSUME(StringLit) },
      { ALT: () => this.CONSUME(Op) },
      { ALT: () => this.SUBRULE(this.list) },
      { ALT: () => this.SUBRULE(this.nameOrCall) },
    ]);
  });

  nameOrCall = this.RULE('nameOrCall', () => {
    this.CONSUME(Ident);
    this.OPTION(() => {
      this.CONSUME(LParen);
      this.MANY(() => {
        this.OR([
          { ALT: () => this.SUBRULE(this.value) },
          { ALT: () => this.CONSUME(Comma) },
        ]);
      });
      this.CONSUME(RParen);
    });
  });

  list = this.RULE('list', () => {
    this.CONSUME(LBrack);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.value) },
        { ALT: () => this.CONSUME(Comma) },
      ]);
    });
    this.CONSUME(RBrack);
  });
}

/** One parser instance, reused (Chevrotain parsers are stateful but resettable via `input`). */
export const parser = new MoeParser();
