// Tokenizers: GPT-2 BPE (the r50k encoding of gpt-tokenizer: vocabulary 50257, <|endoftext|> =
// 50256 between documents) and UTF-8 bytes (vocabulary 256; byte 0 separates documents, the
// cleaner removes NUL from text).
import { decode as gpt2Decode, encode as gpt2Encode } from 'gpt-tokenizer/encoding/r50k_base';

export interface Tokenizer {
  name: 'gpt2' | 'bytes';
  vocab: number;
  eot: number;
  encode(text: string): number[] | Uint8Array;
  decode(tokens: ArrayLike<number>): string;
}

// Text that happens to contain "<|endoftext|>" is encoded as plain text, never as the special token.
const NO_SPECIAL = { disallowedSpecial: new Set<string>() };

export const gpt2: Tokenizer = {
  name: 'gpt2',
  vocab: 50257,
  eot: 50256,
  encode: (text) => gpt2Encode(text, NO_SPECIAL),
  decode: (tokens) => gpt2Decode(Array.from(tokens)),
};

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export const bytes: Tokenizer = {
  name: 'bytes',
  vocab: 256,
  eot: 0,
  encode: (text) => utf8.encode(text),
  decode: (tokens) => utf8Decoder.decode(Uint8Array.from(tokens)),
};

export function tokenizer(name: 'gpt2' | 'bytes'): Tokenizer {
  return name === 'gpt2' ? gpt2 : bytes;
}
