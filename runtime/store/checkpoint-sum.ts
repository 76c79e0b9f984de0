// Checksums of a checkpoint, stored in its own safetensors metadata: SHA-256 over the tensor bytes
// (sha256_data) and over everything else the header says, the tensors' names, dtypes, shapes and
// offsets and the other metadata (sha256_meta). A flipped bit anywhere is found on load; the step
// is also checked against the file's name, so a resume can never skip or repeat steps silently.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../grammar/user-error.js';
import { decodeSafetensors, parseHeader, type SafetensorsFile, type TensorInfo } from './safetensors.js';

const SUMS = ['sha256_data', 'sha256_meta'] as const;

function metaDigest(tensors: [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][], metadata: Record<string, string>): string {
  const meta = Object.keys(metadata).filter((k) => !(SUMS as readonly string[]).includes(k)).sort().map((k) => [k, metadata[k]]);
  const ts = [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, t]) => [n, t.dtype, t.shape, t.data_offsets]);
  return createHash('sha256').update(JSON.stringify({ meta, ts })).digest('hex');
}

/** The two checksums for tensors written in name order as F32 (what encodeSafetensors does). */
export function checkpointSums(tensors: [string, { shape: number[]; data: Float32Array }][], metadata: Record<string, string>): Record<(typeof SUMS)[number], string> {
  const sorted = [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const data = createHash('sha256');
  const infos: [string, TensorInfo][] = [];
  let offset = 0;
  for (const [name, t] of sorted) {
    data.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    infos.push([name, { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }]);
    offset += t.data.byteLength;
  }
  return { sha256_data: data.digest('hex'), sha256_meta: metaDigest(infos, metadata) };
}

export class CheckpointDamaged extends UserError {
  constructor(readonly file: string, readonly reason: string) {
    super(`checkpoint damaged: ${reason}`, { where: file, hint: 'moec falls back to the previous checkpoint; delete this one if it stays' });
    this.name = 'CheckpointDamaged';
  }
}

/**
 * Read a checkpoint and verify it: both checksums (checkpoints of a moec that wrote none carry
 * neither, and are read as they are) and the step against `expectStep` (from the file's name).
 */
export function readVerifiedCheckpoint(file: string, expectStep: number): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new CheckpointDamaged(file, `cannot read it (${(err as { code?: string }).code ?? String(err)})`);
  }
  let f: SafetensorsFile;
  let header: ReturnType<typeof parseHeader>;
  try {
    header = parseHeader(bytes, bytes.byteLength, file);
    f = decodeSafetensors(bytes, file);
  } catch (e) {
    throw new CheckpointDamaged(file, e instanceof Error ? e.message : String(e));
  }
  const m = f.metadata;
  const present = SUMS.filter((k) => k in m);
  if (present.length === 1) throw new CheckpointDamaged(file, `its metadata has ${present[0]} but not the other checksum`);
  if (present.length === 2) {
    const data = createHash('sha256').update(bytes.subarray(header.dataStart)).digest('hex');
    if (data !== m.sha256_data) throw new CheckpointDamaged(file, 'the tensor data does not match its SHA-256 checksum');
    if (metaDigest([...header.tensors], m) !== m.sha256_meta) throw new CheckpointDamaged(file, 'the header (tensor shapes, step, training state) does not match its SHA-256 checksum');
  }
  if (m.step !== undefined && m.step !== String(expectStep)) throw new CheckpointDamaged(file, `it says step ${m.step} but is named ${path.basename(file)}`);
  return f;
}
