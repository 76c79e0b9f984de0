// `moec data fetch`: fetch and prepare every part of a built-in corpus, and summarise it.
import { didYouMean } from '../../grammar/diagnostics.js';
import { UserError } from '../../grammar/user-error.js';
import { dedupe, loadPart, type PartInfo } from './corpus.js';
import { BUILTIN } from './sources/index.js';
import type { Doc, LabelStats } from './types.js';

export interface SourceSummary {
  name: string;
  parts: PartInfo[];
  documents: number;
  chars: number;
  bytes: number;
  /** Labels the summary groups by. */
  labels: string[];
  /** GPT-2 tokens per label value (bytes per token = bytes / tokens). */
  gpt2: LabelStats[];
  seconds: number;
}

/** The labels worth a table: more than one value, at most 30 (not every fortune file or president). */
function labelsToShow(rows: LabelStats[]): string[] {
  const values = new Map<string, Set<string>>();
  for (const r of rows) (values.get(r.label) ?? values.set(r.label, new Set()).get(r.label)!).add(r.value);
  const order = ['language', 'genre', 'party', 'topic', 'module'];
  const shown = order.filter((n) => (values.get(n)?.size ?? 0) > 1 && values.get(n)!.size <= 30);
  return shown.length ? shown : ['source'];
}

export function builtinNames(): string[] {
  return Object.keys(BUILTIN);
}

/** Sum the per-part rows (a document two parts share is counted twice: rare, and only in these stats). */
function mergeRows(parts: PartInfo[]): LabelStats[] {
  const by = new Map<string, LabelStats>();
  for (const r of parts.flatMap((p) => p.gpt2)) {
    const k = `${r.label}\0${r.value}`;
    const m = by.get(k);
    if (!m) by.set(k, { ...r });
    else { m.documents += r.documents; m.chars += r.chars; m.bytes += r.bytes; m.tokens += r.tokens; }
  }
  return [...by.values()];
}

/** Fetch (or find in the cache) every part of a built-in source, all languages; tokens per label come from the parts. */
export async function fetchSource(name: string, log?: (msg: string) => void, command = 'moec data fetch'): Promise<SourceSummary> {
  const src = BUILTIN[name];
  if (!src) {
    const guess = didYouMean(name, builtinNames());
    throw new UserError(`unknown data source '${name}'${guess}`, { where: command, hint: `built-in sources: ${builtinNames().join(', ')}${command.endsWith('fetch') ? ', or all' : ', or a .moe file'}` });
  }
  const t0 = performance.now();
  const parts: PartInfo[] = [];
  const docs: Doc[] = [];
  for (const part of src.parts([...src.languages])) {
    const r = await loadPart(part, log);
    parts.push(r.info);
    docs.push(...r.docs);
  }
  const all = dedupe(docs).docs;
  const rows = mergeRows(parts);
  const labels = labelsToShow(rows);
  const stats = rows.filter((r) => labels.includes(r.label)).sort((a, b) => labels.indexOf(a.label) - labels.indexOf(b.label) || (a.value < b.value ? -1 : 1));
  return {
    name, parts, labels, gpt2: stats, documents: all.length,
    chars: all.reduce((n, d) => n + d.text.length, 0),
    bytes: all.reduce((n, d) => n + Buffer.byteLength(d.text), 0),
    seconds: (performance.now() - t0) / 1000,
  };
}

export interface FetchFailure { name: string; error: unknown }

/**
 * Fetch several sources one after the other; a source that fails (a mirror down, a package moved)
 * is recorded and the rest are still fetched, so `data fetch all` reports every failure at once.
 */
export async function fetchEach(names: string[], onSummary: (s: SourceSummary) => void, opts: { log?: (msg: string) => void; command?: string; fetch?: typeof fetchSource } = {}): Promise<FetchFailure[]> {
  const fetch = opts.fetch ?? fetchSource;
  const failed: FetchFailure[] = [];
  for (const n of names) {
    try {
      onSummary(await fetch(n, opts.log, opts.command));
    } catch (error) {
      failed.push({ name: n, error });
      opts.log?.(`${n}: failed (${(error as Error).message}); going on with the other sources`);
    }
  }
  return failed;
}
