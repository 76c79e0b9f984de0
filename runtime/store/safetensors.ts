// The safetensors format (the Hugging Face checkpoint format): an 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {string: string}}, then the raw little-endian tensor bytes. We write F32; we read F32, F16 and
// BF16 (converted to f32) so checkpoints from other tools load too.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { UserError } from '../../grammar/user-error.js';
import { writeFileAtomic } from './atomic.js';

export type Dtype = 'F32' | 'F16' | 'BF16';
const bytesPer: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };
/** The safetensors reference implementation refuses larger headers; so do we, to fail fast on garbage. */
const MAX_HEADER = 100_000_000;

export interface TensorData {
  shape: number[];
  data: Float32Array;
}
export interface LoadedTensor extends TensorData {
  /** The dtype stored in the file; `data` is always f32. */
  dtype: Dtype;
}
export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  data_offsets: [number, number];
}
export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Bytes before the tensor data: 8 + header length. */
  dataStart: number;
}
export interface SafetensorsFile {
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Serialise as the reference implementation does for f32: `__metadata__` first (keys sorted), tensors
 * sorted by name with contiguous offsets, the JSON padded with spaces to a multiple of 8 so the
 * data is aligned. Returns the pieces to write, without copying the tensor data.
 */
export function encodeSafetensors(tensors: Record<string, TensorData> | Map<string, TensorData>, metadata: Record<string, string> = {}): Uint8Array[] {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('safetensors: a big-endian host is not supported');
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  const meta = Object.keys(metadata).sort();
  if (meta.length) header.__metadata__ = Object.fromEntries(meta.map((k) => [k, metadata[k]]));
  let offset = 0;
  const data: Uint8Array[] = [];
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error(`safetensors: '__metadata__' is reserved and cannot name a tensor`);
    if (t.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`safetensors: tensor '${name}' has an invalid shape [${t.shape.join(', ')}]`);
    if (numel(t.shape) !== t.data.length) throw new Error(`safetensors: tensor '${name}' has shape [${t.shape.join(', ')}] but ${t.data.length} values`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
    data.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json, 'utf8')));
  return [head, Buffer.from(json, 'utf8'), ...data];
}

/** Write a safetensors file atomically: it appears under its name only once completely on disk. */
export function writeSafetensors(file: string, tensors: Record<string, TensorData> | Map<string, TensorData>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

function corrupt(file: string, what: string): UserError {
  return new UserError(`not a valid safetensors file: ${what}`, {
    where: file,
    hint: 'the file is truncated or corrupted (e.g. copied while being written); delete it, or resume from an earlier checkpoint',
  });
}

/** Parse and check the header against the file size: every tensor's bytes must lie in the file, with no gaps or overlaps. */
export function parseHeader(head: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  if (fileSize < 8) throw corrupt(file, `${fileSize} bytes is shorter than the 8-byte header length`);
  const n = Buffer.from(head.buffer, head.byteOffset, 8).readBigUInt64LE();
  if (n > BigInt(MAX_HEADER) || n > BigInt(fileSize - 8)) throw corrupt(file, `the header claims ${n} bytes but the file has ${fileSize - 8} after the length`);
  const len = Number(n);
  if (head.byteLength < 8 + len) throw corrupt(file, 'the header is cut short');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + len)));
  } catch {
    throw corrupt(file, 'the header is not valid UTF-8 JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw corrupt(file, 'the header is not a JSON object');
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!v || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) throw corrupt(file, '__metadata__ must map strings to strings');
      metadata = v as Record<string, string>;
      continue;
    }
    const t = v as Partial<TensorInfo> | null;
    if (!t || typeof t !== 'object') throw corrupt(file, `tensor '${name}' is not an object`);
    if (t.dtype === undefined || !(t.dtype in bytesPer)) throw corrupt(file, `tensor '${name}' has dtype ${JSON.stringify(t.dtype)}; moec reads F32, F16 and BF16`);
    if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) throw corrupt(file, `tensor '${name}' has an invalid shape`);
    const o = t.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !o.every((x) => Number.isInteger(x) && x >= 0) || o[1] < o[0]) throw corrupt(file, `tensor '${name}' has invalid data_offsets`);
    if (o[1] - o[0] !== numel(t.shape) * bytesPer[t.dtype]) throw corrupt(file, `tensor '${name}' has ${o[1] - o[0]} bytes for shape [${t.shape.join(', ')}] of ${t.dtype}`);
    tensors.set(name, { dtype: t.dtype, shape: t.shape, data_offsets: [o[0], o[1]] });
  }
  const dataLen = fileSize - 8 - len;
  let end = 0;
  for (const [name, t] of [...tensors].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])) {
    if (t.data_offsets[0] !== end) throw corrupt(file, `tensor '${name}' starts at byte ${t.data_offsets[0]}, expected ${end} (gap or overlap)`);
    end = t.data_offsets[1];
  }
  if (end > dataLen) throw corrupt(file, `truncated: the header describes ${end} bytes of tensor data but the file holds ${dataLen}`);
  if (end < dataLen) throw corrupt(file, `${dataLen - end} unexpected bytes after the tensor data`);
  return { tensors, metadata, dataStart: 8 + len };
}

function toF32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  // The copy also aligns the data: a tensor's offset in the file need not be a multiple of 4.
  if (dtype === 'F32') return new Float32Array(new Uint8Array(bytes).buffer);
  const n = bytes.byteLength / bytesPer[dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === 'BF16') {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = view.getUint16(i * 2, true) << 16;
  } else for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
  return out;
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function decodeSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const h = parseHeader(bytes, bytes.byteLength, file);
  const tensors = new Map<string, LoadedTensor>();
  for (const [name, t] of h.tensors) {
    const slice = bytes.subarray(h.dataStart + t.data_offsets[0], h.dataStart + t.data_offsets[1]);
    tensors.set(name, { dtype: t.dtype, shape: t.shape, data: toF32(slice, t.dtype) });
  }
  return { tensors, metadata: h.metadata };
}

function unreadable(file: string, err: unknown): UserError {
  const code = (err as { code?: string }).code;
  return new UserError(code === 'ENOENT' ? 'no such checkpoint file' : `cannot read the checkpoint (${code ?? String(err)})`, { where: file });
}

export function readSafetensors(file: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw unreadable(file, err);
  }
  return decodeSafetensors(bytes, file);
}

/** Only the header: tensor names, shapes and metadata, without reading the weights. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  let size: number;
  try {
    size = statSync(file).size;
    fd = openSync(file, 'r');
  } catch (err) {
    throw unreadable(file, err);
  }
  try {
    const first = Buffer.alloc(8);
    if (readSync(fd, first, 0, 8, 0) < 8) throw corrupt(file, `${size} bytes is shorter than the 8-byte header length`);
    const n = first.readBigUInt64LE();
    if (n > BigInt(MAX_HEADER) || n > BigInt(size - 8)) throw corrupt(file, `the header claims ${n} bytes but the file has ${size - 8} after the length`);
    const head = Buffer.alloc(8 + Number(n));
    readSync(fd, head, 0, head.byteLength, 0);
    return parseHeader(head, size, file);
  } finally {
    closeSync(fd);
  }
}
