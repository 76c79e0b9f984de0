// The user's own data: a text file (blank-line separated paragraphs are the documents), a folder
// (each file a document, its first-level sub-folder the label value), JSONL and Parquet (one record a
// document; text and label fields named in the .moe file). Every problem is a UserError naming the
// file (and line and column where there is one) and what to do.
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { UserError } from '../../../grammar/user-error.js';
import { sha256 } from '../hash.js';
import { jsonErrorOffset } from '../json-error.js';
import { cleanText, decodeUtf8 } from '../text.js';
import type { Doc } from '../types.js';

export interface FileSourceSpec {
  kind: 'text' | 'folder' | 'jsonl' | 'parquet';
  path: string;
  /** Text field of jsonl/parquet records. */
  textField: string;
  /** Label field (jsonl/parquet), or the label name of sub-folders (folder). */
  labelField: string | null;
}

const fixSource = (kind: string) => `check the path in the data set's \`source ${kind} "..."\` line (it is relative to the .moe file)`;

/**
 * The most a file source reads from one file, and from all the files of a folder. A file is read
 * whole and decoded to one string (V8 strings stop near 512 MiB), so the bound is stated rather
 * than met as an out-of-memory crash; split a larger corpus into a folder of files.
 */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;
export const MAX_FOLDER_BYTES = 1024 * 1024 * 1024;

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(n < 1024 * 1024 ? 2 : 0)} MiB`;

/** Stat a source path and refuse what must not be read: missing, a device, a pipe (a FIFO blocks forever, /dev/zero never ends), too large. */
async function checkedPath(file: string, kind: string, want: 'file' | 'folder'): Promise<{ size: number; isDirectory: boolean }> {
  if (!existsSync(file)) throw new UserError(`${file} does not exist`, { where: file, hint: fixSource(kind) });
  const s = await stat(file);
  if (s.isDirectory()) {
    if (want === 'folder') return { size: 0, isDirectory: true };
    throw new UserError(`${file} is a folder, but source ${kind} reads a file`, { where: file, hint: kind === 'text' ? 'write `source folder "..."` for a folder of files' : fixSource(kind) });
  }
  if (!s.isFile()) {
    const what = s.isFIFO() ? 'a named pipe (FIFO)' : s.isCharacterDevice() ? 'a character device' : s.isBlockDevice() ? 'a block device' : s.isSocket() ? 'a socket' : 'not a regular file';
    throw new UserError(`${file} is ${what}; source ${kind} reads only a regular file${kind === 'folder' ? ' or folder' : ''}`, { where: file, hint: 'copy the data into a regular file and point the source at it' });
  }
  if (want === 'folder') throw new UserError(`${file} is a file, but source folder reads a folder of files`, { where: file, hint: 'write `source text "..."` for a single file' });
  if (s.size > MAX_FILE_BYTES) {
    throw new UserError(`${file} is ${mib(s.size)}, more than the ${mib(MAX_FILE_BYTES)} moec reads from one file`, { where: file, hint: kind === 'parquet' ? 'split it into smaller Parquet files and use a folder of text, or a smaller sample' : 'split it into several files under one folder (`source folder "..."`), or use `limit` on a smaller sample' });
  }
  return { size: s.size, isDirectory: false };
}

/** Read a checked regular file; a file that grew past the bound since its stat is refused too. */
async function readBounded(file: string): Promise<Buffer> {
  const bytes = await readFile(file);
  if (bytes.length > MAX_FILE_BYTES) throw new UserError(`${file} grew to more than ${mib(MAX_FILE_BYTES)} while it was read`, { where: file, hint: 'point the source at a file that is not being written' });
  return bytes;
}

async function readNonEmpty(file: string, kind: string): Promise<Uint8Array> {
  await checkedPath(file, kind, 'file');
  const bytes = await readBounded(file);
  if (bytes.length === 0) throw new UserError(`${file} is empty`, { where: file, hint: 'point the source at a file with text in it' });
  return bytes;
}

/** A label map without a prototype: a label named '__proto__' is then an ordinary key. */
function labelsOf(init: Record<string, string>): Record<string, string> {
  return Object.assign(Object.create(null) as Record<string, string>, init);
}

function nonBlank(text: string, file: string): string {
  if (!text.trim()) throw new UserError(`${file} holds only white space`, { where: file, hint: 'point the source at a file with text in it' });
  return text;
}

async function textSource(spec: FileSourceSpec): Promise<Doc[]> {
  const text = nonBlank(decodeUtf8(await readNonEmpty(spec.path, 'text'), spec.path), spec.path);
  // Paragraph ids are their content hash: adding a paragraph does not move the others between splits.
  const docs = text.split(/\n\s*\n/).map(cleanText).filter(Boolean).map((t) => ({ id: sha256(t).slice(0, 20), text: t, labels: labelsOf({ source: 'text' }) }));
  if (!docs.length) throw new UserError(`${spec.path} has no text left after removing control characters`, { where: spec.path, hint: 'point the source at a text file (UTF-8 words, not control bytes or binary data)' });
  return docs;
}

async function folderSource(spec: FileSourceSpec): Promise<Doc[]> {
  const root = spec.path;
  await checkedPath(root, 'folder', 'folder');
  const label = spec.labelField ?? 'folder';
  const docs: Doc[] = [];
  let total = 0;
  const entries = (await readdir(root, { withFileTypes: true, recursive: true }))
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => join(e.parentPath, e.name))
    .filter((p) => !relative(root, p).split(sep).some((part) => part.startsWith('.')))
    .sort();
  for (const file of entries) {
    const rel = relative(root, file);
    const parts = rel.split(sep);
    if (parts.length < 2) {
      throw new UserError(`${file} is not in a sub-folder, so it has no '${label}' value`, { where: file, hint: `move it into a sub-folder named after its ${label} (e.g. ${join(root, 'VALUE', basename(file))})` });
    }
    await checkedPath(file, 'folder', 'file');
    const bytes = await readBounded(file);
    total += bytes.length;
    if (total > MAX_FOLDER_BYTES) throw new UserError(`${root} holds more than the ${mib(MAX_FOLDER_BYTES)} moec reads from one folder (at ${file})`, { where: root, hint: 'use a sample of the files, or several data sets' });
    if (bytes.length === 0) throw new UserError(`${file} is empty`, { where: file, hint: 'remove the empty file or put text in it' });
    const text = cleanText(decodeUtf8(bytes, file));
    if (text) docs.push({ id: rel.split(sep).join('/'), text, labels: labelsOf({ [label]: parts[0]!, source: 'folder' }) });
  }
  if (!docs.length) throw new UserError(`${root} holds no text files`, { where: root, hint: `put text files in sub-folders named after their ${label}: ${join(root, 'VALUE', 'file.txt')}` });
  return docs;
}

/** `rec[field]` as a string; `record` says which record for messages ("line 3", "row 3"). */
function fieldValue(rec: Record<string, unknown>, field: string, where: string, record: string, what: 'text' | 'label', fieldsHint: string): string {
  // Own fields only: a field named '__proto__' or 'constructor' must not find Object.prototype.
  const v = Object.hasOwn(rec, field) ? rec[field] : undefined;
  if (v === undefined || v === null) {
    throw new UserError(`${record} has no ${what} field '${field}'`, { where, hint: `${fieldsHint}; set \`${what} FIELD\` in the data block to the field that holds the ${what}, or add '${field}' to every record` });
  }
  if (what === 'text' && typeof v !== 'string') throw new UserError(`${record}: the text field '${field}' is a ${Array.isArray(v) ? 'list' : typeof v}, not a string`, { where, hint: 'the text field must hold a string' });
  if (what === 'label' && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'bigint' && typeof v !== 'boolean') throw new UserError(`${record}: the label field '${field}' is a ${Array.isArray(v) ? 'list' : typeof v}, not a string or number`, { where, hint: 'a label must be a single string or number per record' });
  return String(v);
}


async function jsonlSource(spec: FileSourceSpec): Promise<Doc[]> {
  const file = spec.path;
  const text = nonBlank(decodeUtf8(await readNonEmpty(file, 'jsonl'), file), file);
  const docs: Doc[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (!line.trim()) continue;
    const where = `${file}:${i + 1}`;
    const record = `line ${i + 1}`;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      const at = jsonErrorOffset(line);
      if (at < 0) throw new UserError(`line ${i + 1} is JSON nested too deeply to read (${(e as Error).message})`, { where, hint: 'each line of a JSONL file must be one flat JSON object, e.g. {"text": "...", "label": "..."}' });
      const found = at >= line.length ? 'the line ends too early' : `unexpected ${JSON.stringify(line[at])}`;
      throw new UserError(`line ${i + 1} is not JSON: ${found} at column ${at + 1}`, { where: `${where}:${at + 1}`, hint: 'each line of a JSONL file must be one JSON object, e.g. {"text": "...", "label": "..."}' });
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) {
      throw new UserError(`line ${i + 1} is ${Array.isArray(rec) ? 'a list' : `a ${typeof rec}`}, not a JSON object`, { where, hint: 'each line of a JSONL file must be one JSON object, e.g. {"text": "...", "label": "..."}' });
    }
    const r = rec as Record<string, unknown>;
    const fieldsHint = `the record's fields are: ${Object.keys(r).join(', ') || '(none)'}`;
    const t = cleanText(fieldValue(r, spec.textField, where, record, 'text', fieldsHint));
    const labels = labelsOf({ source: 'jsonl' });
    if (spec.labelField) labels[spec.labelField] = fieldValue(r, spec.labelField, where, record, 'label', fieldsHint);
    if (t) docs.push({ id: typeof r.id === 'string' || typeof r.id === 'number' ? `id:${r.id}` : `line:${sha256(t).slice(0, 20)}`, text: t, labels });
  }
  if (!docs.length) throw new UserError(`${file} has no records with text`, { where: file, hint: 'each line must be a JSON object with a non-empty text field' });
  return docs;
}

/** The Parquet reader's error, in the user's terms (what is wrong with the file), never its internals. */
function parquetProblem(e: unknown, part: 'footer' | 'data'): string {
  const m = (e as Error).message ?? String(e);
  if (/too short|footer != PAR1/.test(m)) return "is not a Parquet file: it does not end with the Parquet marker 'PAR1' (another format, or a file cut short)";
  if (/exceeds available buffer/.test(m)) return 'is cut short: its footer says the metadata is longer than the file';
  const codec = /unsupported compression codec: (\w+)/.exec(m);
  if (codec) return `its pages use the ${codec[1]} compression, which moec cannot decompress`;
  const enc = /unsupported encoding: (\w+)/.exec(m);
  if (enc) return `its pages use the ${enc[1]} encoding, which moec cannot decode`;
  if (/not supported|unsupported/.test(m)) return `it uses a Parquet feature moec cannot read (${m.replace(/^parquet /, '')})`;
  return part === 'footer' ? 'is damaged: its metadata (the footer) cannot be decoded' : 'is damaged: a data page cannot be decoded';
}

async function parquetSource(spec: FileSourceSpec): Promise<Doc[]> {
  const file = spec.path;
  const bytes = await readNonEmpty(file, 'parquet');
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let columns: string[];
  try {
    columns = parquetSchema(parquetMetadata(buf)).children.map((c) => c.element.name);
  } catch (e) {
    throw new UserError(`${file} ${parquetProblem(e, 'footer')}`, { where: file, hint: 'write the file again (pyarrow: pq.write_table), or use `source jsonl "..."` or `source text "..."` for other formats' });
  }
  const wanted = [spec.textField, ...(spec.labelField ? [spec.labelField] : [])];
  for (const [what, c] of [['text', spec.textField], ['label', spec.labelField]] as const) {
    if (c && !columns.includes(c)) throw new UserError(`${file} has no ${what} column '${c}'`, { where: file, hint: `its columns are: ${columns.join(', ')}; set \`${what} COLUMN\` in the data block` });
  }
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: buf, columns: wanted });
  } catch (e) {
    throw new UserError(`cannot read the rows of ${file}: ${parquetProblem(e, 'data')}`, { where: file, hint: 'moec reads uncompressed and snappy-compressed Parquet with plain and dictionary encodings; rewrite the file with pyarrow\'s defaults (pq.write_table(t, path))' });
  }
  const docs: Doc[] = [];
  rows.forEach((r, i) => {
    const where = file;
    const record = `row ${i + 1}`;
    const fieldsHint = `the columns are: ${columns.join(', ')}`;
    const t = cleanText(fieldValue(r, spec.textField, where, record, 'text', fieldsHint));
    const labels = labelsOf({ source: 'parquet' });
    if (spec.labelField) labels[spec.labelField] = fieldValue(r, spec.labelField, where, record, 'label', fieldsHint);
    if (t) docs.push({ id: `row:${sha256(t).slice(0, 20)}`, text: t, labels });
  });
  if (!docs.length) throw new UserError(`${file} has no rows with text`, { where: file, hint: `the column '${spec.textField}' is empty in every row` });
  return docs;
}

/** The documents of a user's file source. */
export function readFileSource(spec: FileSourceSpec): Promise<Doc[]> {
  switch (spec.kind) {
    case 'text': return textSource(spec);
    case 'folder': return folderSource(spec);
    case 'jsonl': return jsonlSource(spec);
    case 'parquet': return parquetSource(spec);
  }
}

/** A checksum of the source's files (names, sizes, contents), for the prepared-data cache key. */
export async function fileSourceChecksum(spec: FileSourceSpec): Promise<string> {
  const s = await checkedPath(spec.path, spec.kind, spec.kind === 'folder' ? 'folder' : 'file');
  if (!s.isDirectory) return sha256(await readBounded(spec.path));
  const files = (await readdir(spec.path, { withFileTypes: true, recursive: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
  const parts: string[] = [];
  let total = 0;
  for (const f of files) {
    const bytes = await readBounded(f);
    total += bytes.length;
    if (total > MAX_FOLDER_BYTES) throw new UserError(`${spec.path} holds more than the ${mib(MAX_FOLDER_BYTES)} moec reads from one folder (at ${f})`, { where: spec.path, hint: 'use a sample of the files, or several data sets' });
    parts.push(`${relative(spec.path, f)}\0${sha256(bytes)}`);
  }
  return sha256(parts.join('\n'));
}
