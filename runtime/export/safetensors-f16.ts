// Export writes weights in f32 or f16; the run store's writer is f32-only (checkpoints must be exact).
import { toF16Bits } from '../../compiler/reference/f16.js';
import { writeFileAtomic } from '../store/atomic.js';

export type ExportDtype = 'f32' | 'f16';

/** A safetensors file of `tensors` in `dtype` (names sorted, data 8-byte aligned), written atomically. */
export function writeWeights(file: string, tensors: Map<string, { shape: number[]; data: Float32Array }>, dtype: ExportDtype, metadata: Record<string, string>): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    let raw: Uint8Array;
    if (dtype === 'f32') raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    else {
      const h = new Uint16Array(t.data.length);
      for (let i = 0; i < h.length; i++) h[i] = toF16Bits(t.data[i]!);
      raw = new Uint8Array(h.buffer);
    }
    header[name] = { dtype: dtype === 'f32' ? 'F32' : 'F16', shape: t.shape, data_offsets: [offset, offset + raw.byteLength] };
    chunks.push(raw);
    offset += raw.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileAtomic(file, [head, Buffer.from(json), ...chunks]);
}
