// prepareDataset: a resolved DataSet -> tokenised train/valid splits with per-document labels,
// cached under prepared/<source>-<tokenizer>-<key>/ (key: source, languages, the files' checksum,
// limit, valid, fields, tokenizer, the corpus and preparation versions).
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataSet } from '../../compiler/frontend/types.js';
import { UserError } from '../../grammar/user-error.js';
import { cachedEntry, cacheRoot, sweepTemporaries } from './cache.js';
import { prepareClusters } from './clusters.js';
import { dedupe, loadPart } from './corpus.js';
import { sha256, unitHash } from './hash.js';
import { applyLimit, isValid } from './limit-split.js';
import { pin } from './packages.js';
import { BUILTIN } from './sources/index.js';
import { fileSourceChecksum, readFileSource, type FileSourceSpec } from './sources/user-files.js';
import { LabelStatsCounter } from './stats.js';
import { tokenizer, type Tokenizer } from './tokenizers.js';
import type { DataStats, Doc, LabelSpace, PreparedData, PreparedSplit, PreparedText } from './types.js';

/** Bumped when the preparation below changes, so cached entries are rebuilt. */
const PREPARE_VERSION = 1;

export interface PrepareOptions {
  /** Progress messages (fetching, tokenising). */
  log?: (msg: string) => void;
  /** Seed of the synthetic cluster data (default 0: every trial sees the same samples). */
  seed?: number;
}

const isFileSource = (k: string): k is FileSourceSpec['kind'] => k === 'text' || k === 'folder' || k === 'jsonl' || k === 'parquet';

function fileSpec(ds: DataSet): FileSourceSpec {
  if (!ds.source.path) throw new UserError(`data set '${ds.name}' (source ${ds.source.kind}) has no path`, { where: `data ${ds.name}`, hint: `write: source ${ds.source.kind} "PATH"` });
  return { kind: ds.source.kind as FileSourceSpec['kind'], path: ds.source.path, textField: ds.text, labelField: ds.label };
}

/** The documents of a data set's source (built-in corpora are fetched and cached first). */
export async function loadDocuments(ds: DataSet, log?: (msg: string) => void): Promise<{ docs: Doc[]; duplicates: number }> {
  if (isFileSource(ds.source.kind)) return dedupe(await readFileSource(fileSpec(ds)));
  const src = BUILTIN[ds.source.kind];
  if (!src) throw new Error(`no loader for source kind ${ds.source.kind}`);
  const docs: Doc[] = [];
  let duplicates = 0;
  for (const part of src.parts(ds.source.languages)) {
    const r = await loadPart(part, log);
    docs.push(...r.docs);
    duplicates += r.info.duplicates;
  }
  // Parts may hold more languages than asked for (udhr keeps all in one part).
  const langs = new Set(ds.source.languages);
  const kept = langs.size ? docs.filter((d) => langs.has(d.labels.language!)) : docs;
  const d = dedupe(kept);
  return { docs: d.docs, duplicates: duplicates + d.duplicates };
}

async function cacheKey(ds: DataSet): Promise<Record<string, unknown>> {
  const key: Record<string, unknown> = {
    prepare: PREPARE_VERSION, source: ds.source.kind, languages: ds.source.languages, tokenizer: ds.tokenizer,
    limit: ds.limit, valid: ds.valid, labels: ds.labels,
  };
  if (isFileSource(ds.source.kind)) {
    const spec = fileSpec(ds);
    Object.assign(key, { path: spec.path, text: spec.textField, label: spec.labelField, files: await fileSourceChecksum(spec) });
  } else {
    key.parts = BUILTIN[ds.source.kind]!.parts(ds.source.languages).map((p) => ({ part: `${p.part}-v${p.version}`, packages: p.packages.map((n) => `${n}@${pin(n).version}`) }));
  }
  return key;
}

/** Label values in a fixed order: the languages as listed in the .moe file, else sorted. */
function labelSpaces(ds: DataSet, docs: Doc[]): LabelSpace[] {
  return ds.labels.map((name) => {
    const present = new Set(docs.map((d) => d.labels[name]!));
    const listed = name === 'language' ? ds.source.languages.filter((l) => present.has(l)) : [];
    const rest = [...present].filter((v) => !listed.includes(v)).sort();
    return { name, values: [...listed, ...rest] };
  });
}

interface SplitIndex {
  docIds: string[];
  docOffsets: number[];
  docLabels: Record<string, number[]>;
}

/** Tokenise a split's documents grouped by label ids (then by a hash of the id), each followed by EOT. */
function buildSplit(docs: Doc[], spaces: LabelSpace[], tok: Tokenizer, stats: LabelStatsCounter): { tokens: Uint32Array; index: SplitIndex } {
  const ids = spaces.map((s) => new Map(s.values.map((v, i) => [v, i])));
  const keyed = docs.map((d) => ({ d, l: spaces.map((s, k) => ids[k]!.get(d.labels[s.name]!)!), h: unitHash(`order\0${d.id}`) }));
  keyed.sort((a, b) => {
    for (let k = 0; k < a.l.length; k++) if (a.l[k] !== b.l[k]) return a.l[k]! - b.l[k]!;
    return a.h - b.h || (a.d.id < b.d.id ? -1 : 1);
  });
  const pieces: ArrayLike<number>[] = [];
  const index: SplitIndex = { docIds: [], docOffsets: [0], docLabels: Object.fromEntries(spaces.map((s) => [s.name, []])) };
  let total = 0;
  for (const { d, l } of keyed) {
    const t = tok.encode(d.text);
    stats.add(d, t.length);
    pieces.push(t);
    total += t.length + 1;
    index.docIds.push(d.id);
    index.docOffsets.push(total);
    spaces.forEach((s, k) => index.docLabels[s.name]!.push(l[k]!));
  }
  const tokens = new Uint32Array(total);
  let at = 0;
  for (const p of pieces) {
    tokens.set(p, at);
    at += p.length;
    tokens[at++] = tok.eot;
  }
  return { tokens, index };
}

function splitFrom(tokens: Uint32Array, index: SplitIndex, spaces: LabelSpace[]): PreparedSplit {
  const docOffsets = Uint32Array.from(index.docOffsets);
  const docLabels = Object.fromEntries(spaces.map((s) => [s.name, Uint32Array.from(index.docLabels[s.name]!)]));
  // Groups: runs of consecutive documents with the same label ids (the documents are sorted by them).
  const groupStarts: number[] = [];
  for (let i = 0; i < index.docIds.length; i++) {
    if (i === 0 || spaces.some((s) => docLabels[s.name]![i] !== docLabels[s.name]![i - 1])) groupStarts.push(i);
  }
  const groupOffsets = Uint32Array.from([...groupStarts.map((i) => docOffsets[i]!), tokens.length]);
  const groupLabels = Object.fromEntries(spaces.map((s) => [s.name, Uint32Array.from(groupStarts.map((i) => docLabels[s.name]![i]!))]));
  return { tokens, docOffsets, docIds: index.docIds, docLabels, groupOffsets, groupLabels };
}

function tokensToBytes(t: Uint32Array): Uint8Array {
  // Stored little-endian, as the typed array is on every platform Node runs on.
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
}

async function readTokens(path: string): Promise<Uint32Array> {
  const b = await readFile(path);
  const out = new Uint32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

async function prepareText(ds: DataSet, opts: PrepareOptions): Promise<PreparedText> {
  const tok = tokenizer(ds.tokenizer);
  const key = await cacheKey(ds);
  const parent = join(cacheRoot(), 'prepared');
  await mkdir(parent, { recursive: true });
  await sweepTemporaries(parent);
  const dir = join(parent, `${ds.source.kind}-${ds.tokenizer}-${sha256(JSON.stringify(key)).slice(0, 16)}`);
  // A file source's problems name the file: that is what the user opens to fix them.
  const where = ds.source.path ?? `data ${ds.name}`;
  const from = ds.source.path ? ` (source ${ds.source.kind} ${ds.source.path})` : '';
  const entry = await cachedEntry(dir, key, async (w) => {
    const { docs: all, duplicates } = await loadDocuments(ds, opts.log);
    for (const d of all) {
      for (const l of ds.labels) if (d.labels[l] === undefined) throw new Error(`document ${d.id} of ${ds.source.kind} lacks label ${l}`);
    }
    const docs = applyLimit(all, ds.limit);
    const valid = docs.filter((d) => isValid(d, ds.valid));
    const train = docs.filter((d) => !isValid(d, ds.valid));
    if (!train.length) throw new UserError(`data set '${ds.name}'${from} has no training documents (${docs.length} in all)`, { where, hint: 'add documents, or lower `valid`' });
    if (ds.valid > 0 && !valid.length) {
      throw new UserError(`data set '${ds.name}'${from} has ${docs.length} document${docs.length === 1 ? '' : 's'}, and none fell into the validation split (valid ${ds.valid})`, {
        where, hint: ds.source.kind === 'text' ? 'a text file is split into documents at blank lines: separate paragraphs with blank lines, or raise `valid`' : 'add documents, raise `valid` or `limit`',
      });
    }
    const spaces = labelSpaces(ds, docs);
    opts.log?.(`tokenising ${ds.name} (${docs.length} documents, ${tok.name})`);
    const counter = new LabelStatsCounter(ds.labels);
    const tr = buildSplit(train, spaces, tok, counter);
    const va = buildSplit(valid, spaces, tok, counter);
    const stats: DataStats = {
      documents: { train: train.length, valid: valid.length },
      tokens: { train: tr.tokens.length, valid: va.tokens.length },
      chars: docs.reduce((n, d) => n + d.text.length, 0),
      bytes: docs.reduce((n, d) => n + Buffer.byteLength(d.text), 0),
      perLabel: counter.result((l) => spaces.find((s) => s.name === l)?.values),
      duplicates,
    };
    await w.write('train.u32', tokensToBytes(tr.tokens));
    await w.write('valid.u32', tokensToBytes(va.tokens));
    await w.write('index.json', JSON.stringify({ labels: spaces, train: tr.index, valid: va.index }));
    await w.write('stats.json', JSON.stringify(stats, null, 1));
    return { documents: docs.length };
  }, (why) => opts.log?.(`cached data for '${ds.name}' is damaged (${why}); preparing it again`));
  const index = JSON.parse(await readFile(join(entry.dir, 'index.json'), 'utf8')) as { labels: LabelSpace[]; train: SplitIndex; valid: SplitIndex };
  const stats = JSON.parse(await readFile(join(entry.dir, 'stats.json'), 'utf8')) as DataStats;
  return {
    kind: 'text', name: ds.name, tokenizer: ds.tokenizer, vocab: tok.vocab, eot: tok.eot, labels: index.labels,
    train: splitFrom(await readTokens(join(entry.dir, 'train.u32')), index.train, index.labels),
    valid: splitFrom(await readTokens(join(entry.dir, 'valid.u32')), index.valid, index.labels),
    stats, cacheDir: entry.dir,
  };
}

/**
 * Prepare a data set for training and evaluation: fetch a built-in corpus or read the user's files,
 * clean, deduplicate, cap at `limit` characters, split by document, tokenise; cached on disk.
 * The synthetic `clusters` source is generated instead (not cached: it takes milliseconds).
 */
export async function prepareDataset(ds: DataSet, opts: PrepareOptions = {}): Promise<PreparedData> {
  if (ds.source.kind === 'clusters') return prepareClusters(ds, opts.seed ?? 0);
  return prepareText(ds, opts);
}
