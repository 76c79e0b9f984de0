// LibreOffice help pages (Debian libreoffice-help-*): the same pages in every language, so a
// language label with little else changing. Each HTML page becomes one document of its text lines;
// lines of a translation identical to a line of the English page (untranslated) are dropped.
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { htmlLines } from '../html.js';
import { cleanText } from '../text.js';
import type { Doc } from '../types.js';
import { builtinCorpora } from '../../../compiler/frontend/corpora.js';
import type { BuiltinSource, CorpusPart } from './part.js';

const LANGS = builtinCorpora['libreoffice-help'].languages;
const packageOf = (lang: string) => `libreoffice-help-${lang === 'en' ? 'en-us' : lang}`;
const helpDirOf = (lang: string) => (lang === 'en' ? 'en-US' : lang);

async function htmlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.html')) out.push(join(e.parentPath, e.name));
  }
  return out.sort();
}

/** Page path relative to the language's help folder -> its text lines. */
async function pages(unpacked: string, lang: string): Promise<Map<string, string[]>> {
  const root = join(unpacked, 'usr/share/libreoffice/help', helpDirOf(lang), 'text');
  const out = new Map<string, string[]>();
  // Thousands of small files: synchronous reads are several times faster than awaiting each one.
  for (const file of await htmlFiles(root)) {
    const lines = htmlLines(readFileSync(file, 'utf8'), { rootId: 'DisplayArea' }).map(cleanText).filter((l) => l.length > 0);
    if (lines.length) out.set(relative(root, file), lines);
  }
  return out;
}

// Every translation is compared with the English pages: parse them once per process.
let englishMemo: { sha256: string; pages: Map<string, string[]> } | null = null;

async function englishPages(dir: string, sha: string): Promise<Map<string, string[]>> {
  if (englishMemo?.sha256 !== sha) englishMemo = { sha256: sha, pages: await pages(dir, 'en') };
  return englishMemo.pages;
}

function part(lang: string): CorpusPart {
  return {
    source: 'libreoffice-help',
    part: lang,
    packages: lang === 'en' ? [packageOf('en')] : [packageOf('en'), packageOf(lang)],
    version: 1,
    async build(unpacked, sha256s) {
      const english = await englishPages(unpacked[0]!, sha256s[0]!);
      const own = lang === 'en' ? english : await pages(unpacked[1]!, lang);
      const docs: Doc[] = [];
      for (const [page, lines] of own) {
        const en = lang === 'en' ? null : new Set(english.get(page) ?? []);
        const kept = en ? lines.filter((l) => !en.has(l)) : lines;
        if (!kept.length) continue;
        docs.push({ id: `${lang}/${page}`, splitKey: page, text: kept.join('\n'), labels: { language: lang, module: page.split('/')[0]!, source: 'libreoffice-help' } });
      }
      return docs;
    },
  };
}

export const libreofficeHelp: BuiltinSource = {
  name: 'libreoffice-help',
  summary: 'LibreOffice 7.4 help pages in en, de, fr, it, es, ru (Debian libreoffice-help-*); label language',
  languages: LANGS,
  parts: (languages) => (languages.length ? languages : [...LANGS]).map(part),
};
