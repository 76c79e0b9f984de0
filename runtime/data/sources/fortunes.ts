// Debian fortune cookies: English (fortunes, fortunes-min) with one file per topic, and German,
// Italian, Spanish and Russian collections. One fortune (text between `%` lines) = one document;
// labels topic (the file name) and language. Offensive collections (off/) are left out, as is ASCII art.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../hash.js';
import { cleanText } from '../text.js';
import type { Doc } from '../types.js';
import { builtinCorpora } from '../../../compiler/frontend/corpora.js';
import type { BuiltinSource, CorpusPart } from './part.js';

const SKIP_TOPICS = new Set(['ascii-art', 'asciiart']);

export function splitFortunes(text: string): string[] {
  return text.split(/^%\s*$/m).map(cleanText).filter((t) => t.length > 0);
}

async function readTopics(dir: string, lang: string): Promise<Doc[]> {
  const docs: Doc[] = [];
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && !/\.(dat|u8)$/.test(e.name)).map((e) => e.name).sort();
  for (const file of entries) {
    const topic = file.replace(/\.fortunes$/, '');
    if (SKIP_TOPICS.has(topic)) continue;
    for (const text of splitFortunes(await readFile(join(dir, file), 'utf8'))) {
      docs.push({ id: `${lang}/${topic}/${sha256(text).slice(0, 16)}`, text, labels: { topic, language: lang, source: 'fortunes' } });
    }
  }
  return docs;
}

function part(lang: string): CorpusPart {
  const english = lang === 'en';
  return {
    source: 'fortunes',
    part: lang,
    packages: english ? ['fortunes-min', 'fortunes'] : [`fortunes-${lang}`],
    version: 1,
    async build(unpacked) {
      const docs: Doc[] = [];
      for (const dir of unpacked) docs.push(...(await readTopics(join(dir, 'usr/share/games/fortunes', english ? '' : lang), lang)));
      return docs;
    },
  };
}

export const fortunes: BuiltinSource = {
  name: 'fortunes',
  summary: 'Debian fortune cookies: English by topic (fortunes, fortunes-min), and fortunes-de/it/es/ru; labels topic, language',
  languages: builtinCorpora.fortunes.languages,
  // Without languages: the English topics (the label is `topic`); with languages: those languages.
  parts: (languages) => (languages.length ? languages : ['en']).map(part),
};
