// A folder of text files in two topics (news, fiction), generated from a fixed word list by a
// seeded LCG: the offline corpus the resume, queue, Slurm and safety tests and the queue bench train on.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const WORDS = 'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so no will more can who out up said what its about into than them only like other time new some could these two may first then do any'.split(' ');

export interface WordCorpus {
  /** How many of the word list's words are used (its first `vocab`). */
  vocab: number;
  seed: number;
  /** Documents per topic. */
  docs: number;
  /** Words per document. */
  words: number;
}

export function writeWordCorpus(dir: string, c: WordCorpus): void {
  const words = WORDS.slice(0, c.vocab);
  let x = c.seed;
  for (const topic of ['news', 'fiction']) {
    mkdirSync(path.join(dir, topic), { recursive: true });
    for (let d = 0; d < c.docs; d++) {
      const out: string[] = [];
      for (let i = 0; i < c.words; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        out.push(words[x % words.length]!);
      }
      writeFileSync(path.join(dir, topic, `doc${d}.txt`), `${topic} ${out.join(' ')}.\n`);
    }
  }
}
