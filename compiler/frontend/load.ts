// Reading .moe files: imports (relative to the importing file, cycles reported), named
// definitions (duplicates reported, imported ones overridden key by key, `extends`), into a Scope.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { DefinitionKind, MoeFile } from '../../grammar/ast.js';
import { didYouMean, error, warning, type Diagnostic } from '../../grammar/diagnostics.js';
import { parseSource } from '../../grammar/parse.js';
import { noSpan, type Span } from '../../grammar/span.js';
import { evaluateSchema } from './schema.js';
import { mergeTree, treeOf, type Tree } from './tree.js';

export interface Def {
  kind: DefinitionKind;
  name: string | null;
  /** Span of the name (or of the block keyword). */
  nameSpan: Span;
  tree: Tree;
  /** The file that (last) defined it. */
  file: string;
}

export interface Scope {
  root: string;
  rootSpan: Span;
  data: Map<string, Def>;
  model: Map<string, Def>;
  preset: Map<string, Def>;
  train: Def | undefined;
  evaluate: Def | undefined;
  sweep: Def | undefined;
  /** File name (as displayed) -> text, for rendering diagnostics. */
  sources: Map<string, string>;
}

export type ReadFile = (file: string) => string | undefined;

export const readFromDisk: ReadFile = (file) => {
  try {
    if (!statSync(file).isFile()) return undefined;
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

export const PATH_HINT = 'paths in a .moe file are relative to the file that names them; absolute paths and .. are allowed, but a pipeline that reaches outside its folder is not self-contained (copy that file along, or move it into the folder)';

/** The absolute path `target` names when it is outside `rootDir` (the root pipeline's folder), else undefined. */
export function leavesFolder(rootDir: string, target: string): string | undefined {
  const abs = path.resolve(target);
  const rel = path.relative(rootDir, abs);
  return rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel) ? abs : undefined;
}

/** The real path of `file` when it is a link to something that is not a .moe file (its text must not be echoed in diagnostics). */
function notMoeTarget(file: string): string | undefined {
  try {
    const real = realpathSync(file);
    return real.endsWith('.moe') ? undefined : real;
  } catch {
    return undefined;
  }
}

const evalRepeat = (k: string) => Boolean(evaluateSchema.properties?.[k]?.['x-repeat']);

export function loadScope(file: string, read: ReadFile = readFromDisk): { scope: Scope; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const sources = new Map<string, string>();
  const scope: Scope = {
    root: file, rootSpan: { ...noSpan(file), end: 0 }, data: new Map(), model: new Map(), preset: new Map(),
    train: undefined, evaluate: undefined, sweep: undefined, sources,
  };
  const done = new Set<string>();
  const stack: string[] = [];

  const rootDir = path.dirname(path.resolve(file));
  const visit = (display: string, importSpan: Span | undefined, importText = display): void => {
    const key = path.resolve(display);
    if (stack.includes(key)) {
      const cycle = [...stack.slice(stack.indexOf(key)), key].map((p) => path.relative(rootDir, p) || p);
      diagnostics.push(error(`import cycle: ${cycle.join(' -> ')}`, importSpan, 'a file cannot import itself, directly or through other files'));
      return;
    }
    if (done.has(key)) return;
    const text = read(display);
    if (text === undefined) {
      if (importSpan) diagnostics.push(error(`cannot import '${importText}': no such file`, importSpan, `looked for ${display}`));
      else diagnostics.push(error(`cannot read '${display}': no such file`, undefined));
      return;
    }
    sources.set(display, text);
    stack.push(key);
    const { ast, diagnostics: pd } = parseSource(text, display);
    diagnostics.push(...pd);
    for (const item of ast.items) {
      if (item.kind !== 'import') continue;
      if (!item.path.endsWith('.moe')) {
        diagnostics.push(error(`can only import .moe files, not '${item.path}'`, item.pathSpan));
        continue;
      }
      // Relative to the importing file; an absolute path is taken as it is (see docs/LANGUAGE.md, Paths).
      const target = path.isAbsolute(item.path) ? item.path : path.join(path.dirname(display), item.path);
      const outside = leavesFolder(rootDir, target);
      if (outside) diagnostics.push(warning(`import '${item.path}' reads ${outside}, outside the pipeline's folder ${rootDir}`, item.pathSpan, PATH_HINT));
      if (read === readFromDisk) {
        const real = notMoeTarget(target);
        if (real) { diagnostics.push(error(`cannot import '${item.path}': it is a link to ${real}, which is not a .moe file`, item.pathSpan, 'import only .moe files; point the link at a .moe file')); continue; }
      }
      visit(target, item.pathSpan, item.path);
    }
    stack.pop();
    done.add(key);
    define(ast, scope, diagnostics);
  };
  visit(file, undefined);
  return { scope, diagnostics };
}

function define(ast: MoeFile, scope: Scope, diagnostics: Diagnostic[]): void {
  const local = new Map<string, Span>();
  for (const item of ast.items) {
    if (item.kind !== 'definition') continue;
    const kind = item.defKind;
    const name = item.name?.text ?? null;
    const nameSpan = item.name?.span ?? item.kindSpan;
    const id = name === null ? kind : `${kind} ${name}`;
    const first = local.get(id);
    if (first) {
      const what = name === null ? `a second ${kind} block` : `duplicate definition of ${kind} '${name}'`;
      diagnostics.push(error(`${what} (the first is at line ${first.line})`, nameSpan, name === null ? `merge them into one ${kind} block` : `rename one of them, or use '${kind} NEW extends ${name} { ... }'`));
      continue;
    }
    local.set(id, nameSpan);
    let tree = treeOf(item.body);
    if (kind === 'data' || kind === 'model' || kind === 'preset') {
      const map = scope[kind];
      if (item.base) {
        const base = map.get(item.base.text);
        if (!base) {
          diagnostics.push(error(`${kind} '${name}' extends '${item.base.text}', which is not defined${didYouMean(item.base.text, map.keys())}`, item.base.span,
            map.size ? `defined ${kind} blocks: ${[...map.keys()].join(', ')}` : `define ${kind} ${item.base.text} { ... } above, or import the file that has it`));
        } else {
          tree = mergeTree(base.tree, tree);
        }
      }
      const imported = map.get(name!);
      if (imported && imported.file !== ast.file) tree = mergeTree(imported.tree, tree);
      map.set(name!, { kind, name, nameSpan, tree, file: ast.file });
    } else {
      const prev = scope[kind];
      if (prev && kind !== 'sweep') tree = mergeTree(prev.tree, tree, kind === 'evaluate' ? evalRepeat : () => false);
      scope[kind] = { kind, name: null, nameSpan, tree, file: ast.file };
    }
  }
}
