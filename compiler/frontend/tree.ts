// The key/value tree of a block after imports and `extends` are merged, and the overrides that
// presets and sweeps apply to it. Overrides act on the language level (the text the user wrote),
// so a swept value is read exactly like the same value written in the block, and its
// diagnostics point at the sweep.
import type { Block, Statement, Value } from '../../grammar/ast.js';
import type { Span } from '../../grammar/span.js';

export interface Entry {
  key: string;
  keySpan: Span;
  args: Value[][];
  block: Tree | undefined;
  span: Span;
  /** Set on entries that come from a preset or a sweep: the trial name part (for messages). */
  origin?: string;
}

export interface Tree {
  entries: Entry[];
  span: Span;
}

export function entryOf(s: Statement): Entry {
  return { key: s.key, keySpan: s.keySpan, args: s.args, block: s.block ? treeOf(s.block) : undefined, span: s.span };
}

export function treeOf(b: Block): Tree {
  return { entries: b.statements.map(entryOf), span: b.span };
}

/** `over` on top of `base`: keys in `over` replace those in `base` (nested blocks merge key by key; repeatable keys replace as a set). */
export function mergeTree(base: Tree, over: Tree, isRepeat: (key: string) => boolean = () => false): Tree {
  const entries: Entry[] = [];
  const overKeys = new Set(over.entries.map((e) => e.key));
  for (const e of base.entries) {
    if (!overKeys.has(e.key)) entries.push(e);
  }
  const merged = new Set<string>();
  for (const e of over.entries) {
    if (e.block && !isRepeat(e.key) && !merged.has(e.key)) {
      const b = base.entries.find((x) => x.key === e.key && x.block);
      if (b && b.block) {
        merged.add(e.key);
        entries.push({ ...e, block: mergeTree(b.block, e.block, () => false) });
        continue;
      }
    }
    entries.push(e);
  }
  return { entries, span: over.span };
}

/** A copy of `tree` with the field at `keys` set to `entry` (creating nested blocks on the way). */
export function setPath(tree: Tree, keys: string[], entry: Entry): Tree {
  const [k, ...rest] = keys;
  if (k === undefined) return tree;
  if (rest.length === 0) {
    const entries = tree.entries.filter((e) => e.key !== k);
    entries.push({ ...entry, key: k });
    return { entries, span: tree.span };
  }
  const i = tree.entries.findIndex((e) => e.key === k && e.block);
  const entries = tree.entries.slice();
  if (i >= 0) {
    const e = entries[i]!;
    entries[i] = { ...e, block: setPath(e.block!, rest, entry) };
  } else {
    entries.push({ key: k, keySpan: entry.keySpan, args: [], block: setPath({ entries: [], span: entry.span }, rest, entry), span: entry.span });
  }
  return { entries, span: tree.span };
}

/** The first entry for `keys` in `tree`, if any. */
export function getPath(tree: Tree | undefined, keys: string[]): Entry | undefined {
  let t = tree;
  for (let i = 0; i < keys.length; i++) {
    const e = t?.entries.find((x) => x.key === keys[i]);
    if (!e) return undefined;
    if (i === keys.length - 1) return e;
    t = e.block;
  }
  return undefined;
}
