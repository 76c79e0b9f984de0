import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../grammar/user-error.js';
import { decodeSafetensors, readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../../runtime/store/safetensors.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'moec-st-'));

test('safetensors: round trip of GPT-2 style tensors and metadata, atomically written', () => {
  const dir = tmp();
  const file = path.join(dir, 'model.safetensors');
  const wte = Float32Array.from({ length: 7 * 3 }, (_, i) => i * 0.5 - 3);
  const attn = Float32Array.from({ length: 3 * 9 }, (_, i) => Math.sin(i));
  writeSafetensors(file, { 'wte.weight': { shape: [7, 3], data: wte }, 'h.0.attn.c_attn.weight': { shape: [3, 9], data: attn }, 'ln_f.bias': { shape: [0], data: new Float32Array(0) } }, { step: '12', note: 'ünï' });
  assert.deepEqual(readdirSync(dir), ['model.safetensors'], 'no temp file left behind');
  const f = readSafetensors(file);
  assert.deepEqual([...f.tensors.keys()].sort(), ['h.0.attn.c_attn.weight', 'ln_f.bias', 'wte.weight']);
  assert.deepEqual(f.tensors.get('wte.weight')!.shape, [7, 3]);
  assert.deepEqual([...f.tensors.get('wte.weight')!.data], [...wte]);
  assert.deepEqual([...f.tensors.get('h.0.attn.c_attn.weight')!.data], [...attn]);
  assert.equal(f.tensors.get('ln_f.bias')!.data.length, 0);
  assert.deepEqual(f.metadata, { note: 'ünï', step: '12' });
  const h = readSafetensorsHeader(file);
  assert.equal(h.dataStart % 8, 0, 'data aligned to 8 bytes');
  assert.deepEqual(h.tensors.get('wte.weight')!.data_offsets, [108, 192]);
});

test('safetensors: byte-exact against a hand-made file', () => {
  // 8-byte LE length, JSON (metadata first, tensors by name, space-padded to 8), then f32 LE data.
  const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}';
  const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeUInt32LE(padded.length, 0);
  const data = Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x40, 0x40]); // 1, -2, 3
  const expected = Buffer.concat([len, Buffer.from(padded), data]);
  const file = path.join(tmp(), 'x.safetensors');
  writeSafetensors(file, { b: { shape: [1, 1], data: new Float32Array([3]) }, a: { shape: [2], data: new Float32Array([1, -2]) } }, { k: 'v' });
  assert.deepEqual(readFileSync(file), expected);
  const back = decodeSafetensors(expected, 'x');
  assert.deepEqual([...back.tensors.get('a')!.data], [1, -2]);
});

test('safetensors: F16 and BF16 are read as f32, even at an unaligned offset', () => {
  const json = '{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"g":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]},"f":{"dtype":"F32","shape":[1],"data_offsets":[10,14]}}';
  const len = Buffer.alloc(8);
  len.writeUInt32LE(json.length, 0);
  const d = Buffer.alloc(14);
  d.writeUInt16LE(0x3c00, 0); // 1
  d.writeUInt16LE(0xc000, 2); // -2
  d.writeUInt16LE(0x3555, 4); // ~0.33325
  d.writeUInt16LE(0x3f80, 6); // bf16 1
  d.writeUInt16LE(0xc0a0, 8); // bf16 -5
  d.writeFloatLE(0.25, 10);
  const f = decodeSafetensors(Buffer.concat([len, Buffer.from(json), d]), 'y');
  assert.deepEqual([...f.tensors.get('h')!.data].map((x) => Math.round(x * 1e4) / 1e4), [1, -2, 0.3333]);
  assert.equal(f.tensors.get('h')!.dtype, 'F16');
  assert.deepEqual([...f.tensors.get('g')!.data], [1, -5]);
  assert.deepEqual([...f.tensors.get('f')!.data], [0.25]);
});

test('safetensors: truncated or corrupted files give a UserError naming the file', () => {
  const dir = tmp();
  const file = path.join(dir, 'step-5.safetensors');
  writeSafetensors(file, { 'wte.weight': { shape: [4, 4], data: new Float32Array(16).fill(1) } });
  const size = readFileSync(file).byteLength;
  const expectError = (re: RegExp) => assert.throws(() => readSafetensors(file), (e: unknown) => e instanceof UserError && e.where === file && re.test(e.message) && /step-5\.safetensors: error:/.test(e.format()));
  truncateSync(file, size - 3);
  expectError(/truncated: the header describes 64 bytes of tensor data but the file holds 61/);
  truncateSync(file, 20);
  expectError(/header claims \d+ bytes/);
  truncateSync(file, 5);
  expectError(/shorter than the 8-byte header length/);
  const bad = Buffer.alloc(8 + 16 + 4);
  bad.writeUInt32LE(16, 0);
  bad.write('{"a":{"dtype":"F', 8);
  writeFileSync(file, bad);
  expectError(/not valid UTF-8 JSON/);
  const wrongShape = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}';
  const w = Buffer.alloc(8 + wrongShape.length + 4);
  w.writeUInt32LE(wrongShape.length, 0);
  w.write(wrongShape, 8);
  writeFileSync(file, w);
  expectError(/'a' has 4 bytes for shape \[2\] of F32/);
  assert.throws(() => readSafetensors(path.join(dir, 'missing.safetensors')), (e: unknown) => e instanceof UserError && /no such checkpoint file/.test(e.message));
});
