// The typed AST of a .moe file. Every node keeps its source span.
// Top-level items are typed (imports, definitions); the bodies of blocks are key/value
// statements whose meaning (which keys exist, what values they take) lives in the schema.
import type { Span } from './span.js';

export type Value =
  | { kind: 'number'; value: number; raw: string; span: Span }
  /** `5%`; `value` is the fraction (0.05). */
  | { kind: 'percent'; value: number; raw: string; span: Span }
  /** `4x`; `value` is the factor (4). */
  | { kind: 'multiplier'; value: number; raw: string; span: Span }
  | { kind: 'string'; value: string; raw: string; span: Span }
  /** A name or a dotted path (`wiki.valid`); `path` is the name split at dots. */
  | { kind: 'ident'; name: string; path: string[]; span: Span }
  | { kind: 'list'; items: Value[]; span: Span }
  /** `label(language)`, `cosine(dim 32)`: args are comma-separated groups of values. */
  | { kind: 'call'; name: string; nameSpan: Span; args: Value[][]; span: Span }
  | { kind: 'op'; op: '==' | '!='; span: Span };

export interface Statement {
  kind: 'statement';
  /** The key as written; may be a dotted path in presets and sweeps. */
  key: string;
  keyPath: string[];
  keySpan: Span;
  /** Values after the key, in comma-separated groups (`baseline dense same total, same active`). */
  args: Value[][];
  block: Block | undefined;
  span: Span;
}

export interface Block {
  statements: Statement[];
  span: Span;
}

export interface ImportDecl {
  kind: 'import';
  path: string;
  pathSpan: Span;
  span: Span;
}

export const definitionKinds = ['data', 'model', 'train', 'evaluate', 'sweep', 'preset'] as const;
export type DefinitionKind = (typeof definitionKinds)[number];

export interface Definition {
  kind: 'definition';
  defKind: DefinitionKind;
  kindSpan: Span;
  /** `data wiki { }`: the name; train/evaluate/sweep have none. */
  name: { text: string; span: Span } | undefined;
  /** `model big extends mini { }` */
  base: { text: string; span: Span } | undefined;
  body: Block;
  span: Span;
}

export type TopItem = ImportDecl | Definition;

export interface Comment {
  text: string;
  span: Span;
}

export interface MoeFile {
  file: string;
  items: TopItem[];
  comments: Comment[];
}

/** The flat values of a statement (groups concatenated). */
export function flatArgs(s: Statement): Value[] {
  return s.args.flat();
}

/** Source-like text of a value, used in messages, trial names and fmt. */
export function valueText(v: Value): string {
  switch (v.kind) {
    case 'number':
    case 'percent':
    case 'multiplier':
    case 'string':
      return v.raw;
    case 'ident':
      return v.name;
    case 'op':
      return v.op;
    case 'list':
      return `[${v.items.map(valueText).join(', ')}]`;
    case 'call':
      return `${v.name}(${v.args.map((g) => g.map(valueText).join(' ')).join(', ')})`;
  }
}
