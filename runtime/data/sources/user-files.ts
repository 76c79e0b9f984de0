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

async function readNonEmpty(file: string, kind: string): Promise<Uint8Array> {
  if (!existsSync(file)) throw new UserError(`${file} does not exist`, { where: file, hint: fixSource(kind) });
  const s = await stat(file);
  if (s.isDirectory()) throw new UserError(`${file} is a folder, but source ${kind} reads a file`, { where: file, hint: kind === 'text' ? 'write `source folder "..."` for a folder of files' : fixSource(kind) });
  const bytes = await readFile(file);
  if (bytes.length === 0) throw new UserError(`${file} is empty`, { where: file, hint: 'point the source at a file with text in it' });
  return bytes;
}

function nonBlank(text: string, file: string): string {
  if (!text.trim()) throw new UserError(`${file} holds only white space`, { where: file, hint: 'point the source at a file with text in it' });
  return text;
}

async function textSource(spec: FileSourceSpec): Promise<Doc[]> {
  const text = nonBlank(decodeUtf8(await readNonEmpty(spec.path, 'text'), spec.path), spec.path);
  // Paragraph ids are their content hash: adding a paragraph does not move the others between splits.
  return text.split(/\n\s*\n/).map(cleanText).filter(Boolean).map((t) => ({ id: sha256(t).slice(0, 20), text: t, labels: { source: 'text' } }));
}

async function folderSource(spec: FileSourceSpec): Promise<Doc[]> {
  const root = spec.path;
  if (!existsSync(root)) throw new UserError(`${root} does not exist`, { where: root, hint: fixSource('folder') });
  if (!(await stat(root)).isDirectory()) throw new UserError(`${root} is a file, but source folder reads a folder of files`, { where: root, hint: 'write `source text "..."` for a single file' });
  const label = spec.labelField ?? 'folder';
  const docs: Doc[] = [];
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
    const bytes = await readFile(file);
    if (bytes.length === 0) throw new UserError(`${file} is empty`, { where: file, hint: 'remove the empty file or put text in it' });
    const text = cleanText(decodeUtf8(bytes, file));
    if (text) docs.push({ id: rel.split(sep).join('/'), text, labels: { [label]: parts[0]!, source: 'folder' } });
  }
  if (!docs.length) throw new UserError(`${root} holds no text files`, { where: root, hint: `put text files in sub-folders named after their ${label}: ${join(root, 'VALUE', 'file.txt')}` });
  return docs;
}

/** `rec[field]` as a string; `record` says which record for messages ("line 3", "row 3"). */
function fieldValue(rec: Record<string, unknown>, field: string, where: string, record: string, what: 'text' | 'label', fieldsHint: string): string {
  const v = rec[field];
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
      const found = at >= line.length ? 'the line ends too early' : `unexpected ${JSON.stringify(line[at])}`;
      throw new UserError(`line ${i + 1} is not JSON: ${found} at column ${at + 1}`, { where: `${where}:${at + 1}`, hint: 'each line of a JSONL file must be one JSON object, e.g. {"text": "...", "label": "..."}' });
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) {
      throw new UserError(`line ${i + 1} is ${Array.isArray(rec) ? 'a list' : `a ${typeof rec}`}, not a JSON object`, { where, hint: 'each line of a JSONL file must be one JSON object, e.g. {"text": "...", "label": "..."}' });
    }
    const r = rec as Record<string, unknown>;
    const fieldsHint = `the record's fields are: ${Object.keys(r).join(', ') || '(none)'}`;
    const t = cleanText(fieldValue(r, spec.textField, where, record, 'text', fieldsHint));
    const labels: Record<string, string> = { source: 'jsonl' };
    if (spec.labelField) labels[spec.labelField] = fieldValue(r, spec.labelField, where, record, 'label', fieldsHint);
    if (t) docs.push({ id: typeof r.id === 'string' || typeof r.id === 'number' ? `id:${r.id}` : `line:${sha256(t).slice(0, 20)}`, text: t, labels });
  }
  if (!docs.length) throw new UserError(`${file} has no records with text`, { where: file, hint: 'each line must be a JSON object with a non-empty text field' });
  return docs;
}

async function parquetSource(spec: FileSourceSpec): Promise<Doc[]> {
  const file = spec.path;
  const bytes = await readNonEmpty(file, 'parquet');
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let columns: string[];
  try {
    columns = parquetSchema(parquetMetadata(buf)).children.map((c) => c.element.name);
  } catch (e) {
    throw new UserError(`${file} is not a Parquet file (${(e as Error).message})`, { where: file, hint: 'write `source jsonl "..."` or `source text "..."` for other formats' });
  }
  const wanted = [spec.textField, ...(spec.labelField ? [spec.labelField] : [])];
  for (const [what, c] of [['text', spec.textField], ['label', spec.labelField]] as const) {
    if (c && !columns.includes(c)) throw new UserError(`${file} has no ${what} column '${c}'`, { where: file, hint: `its columns are: ${columns.join(', ')}; set \`${what} COLUMN\` in the data block` });
  }
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: buf, columns: wanted });
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as Error).message}`, { where: file, hint: 'moec reads uncompressed and snappy-compressed Parquet; rewrite the file with snappy compression (pyarrow\'s default)' });
  }
  const docs: Doc[] = [];
  rows.forEach((r, i) => {
    const where = file;
    const record = `row ${i + 1}`;
    const fieldsHint = `the columns are: ${columns.join(', ')}`;
    const t = cleanText(fieldValue(r, spec.textField, where, record, 'text', fieldsHint));
    const labels: Record<string, string> = { source: 'parquet' };
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
  if (!existsSync(spec.path)) throw new UserError(`${spec.path} does not exist`, { where: spec.path, hint: fixSource(spec.kind) });
  const s = await stat(spec.path);
  if (!s.isDirectory()) return sha256(await readFile(spec.path));
  const files = (await readdir(spec.path, { withFileTypes: true, recursive: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
  const parts: string[] = [];
  for (const f of files) parts.push(`${relative(spec.path, f)}\0${sha256(await readFile(f))}`);
  return sha256(parts.join('\n'));
}
