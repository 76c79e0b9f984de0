// Decoding and cleaning text: strict UTF-8 with the position of the first bad byte, and the
// normalisation every source shares.
import { isUtf8 } from 'node:buffer';
import { UserError } from '../../grammar/user-error.js';

/** Byte offset of the first byte that is not part of a valid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    let min = 0;
    if (c < 0x80) { i++; continue; }
    else if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; }
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || (x & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/** 1-based line and column (in characters) of a byte offset. */
export function lineColumnAt(b: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) if (b[i] === 0x0a) { line++; lineStart = i + 1; }
  const column = new TextDecoder().decode(b.subarray(lineStart, offset)).length + 1;
  return { line, column };
}

/** Decode a user's file as UTF-8, or throw a UserError naming the file, line and column of the first bad byte. */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  if (!isUtf8(bytes)) {
    const at = firstInvalidUtf8(bytes);
    const { line, column } = lineColumnAt(bytes, at);
    const hex = bytes[at]!.toString(16).padStart(2, '0');
    throw new UserError(`${file} is not UTF-8 text: byte 0x${hex} at line ${line}, column ${column} is not valid UTF-8`, {
      where: `${file}:${line}:${column}`,
      hint: `convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8 '${file}' > out.txt), or remove it if it is not text`,
    });
  }
  const text = new TextDecoder('utf-8').decode(bytes);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

// Control characters other than tab and newline (NUL included: the byte tokenizer uses 0 as end-of-text),
// terminal escape sequences, and overstriking (X\bX, as in old fortune files).
const ESCAPES = /\x1b\[[0-9;]*[A-Za-z]/g;
const OVERSTRIKE = /[^\n]\x08/g;
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** Normalise line ends, drop control characters, trim trailing spaces and runs of blank lines. */
export function cleanText(s: string): string {
  return s
    .replace(/\r\n?/g, '\n')
    .replace(ESCAPES, '')
    .replace(OVERSTRIKE, '')
    .replace(CONTROL, '')
    .normalize('NFC')
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** UTF-8 length of a string without encoding it. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
