// The one list of data source kinds: the built-in corpora (their languages and the labels a data set
// of them carries), the user's file kinds, and the synthetic cluster task. The schema, resolution,
// validation, `moec eval --data` and the runtime's corpus builders (runtime/data/sources/) all read it.

export interface CorpusInfo {
  /** For the schema's description (and so the language reference). */
  about: string;
  /** Languages a data set may list, as in `source udhr [en, de]`; empty: not selectable. */
  languages: readonly string[];
  /** The labels of a data set with these languages listed (empty list: none listed). */
  labels(languages: readonly string[]): string[];
}

export const builtinCorpora = {
  'libreoffice-help': {
    about: 'LibreOffice help pages, same content per language; label `language`',
    languages: ['en', 'de', 'fr', 'it', 'es', 'ru'],
    labels: () => ['language'],
  },
  brown: { about: 'Brown corpus; label `genre`', languages: [], labels: () => ['genre'] },
  fortunes: {
    about: 'Debian fortune cookies; label `topic`, or `language` when languages are listed',
    languages: ['en', 'de', 'it', 'es', 'ru'],
    labels: (l) => (l.length ? ['language'] : ['topic']),
  },
  sotu: { about: 'State of the Union addresses; label `president`', languages: [], labels: () => ['president'] },
  'moby-dick': { about: 'Moby Dick, one document per chapter; no label', languages: [], labels: () => [] },
  udhr: {
    about: 'Universal Declaration of Human Rights; label `language`',
    languages: ['en', 'de', 'fr', 'it', 'es', 'ru', 'pt', 'nl', 'pl', 'sv', 'fi', 'tr', 'zh', 'ja', 'ar'],
    labels: () => ['language'],
  },
} as const satisfies Record<string, CorpusInfo>;

export type CorpusName = keyof typeof builtinCorpora;
export type CorpusLanguage<C extends CorpusName> = (typeof builtinCorpora)[C]['languages'][number];

export const corpusNames = Object.keys(builtinCorpora) as CorpusName[];
export const fileSourceKinds = ['text', 'folder', 'jsonl', 'parquet'] as const;
export type FileSourceKind = (typeof fileSourceKinds)[number];
export const sourceKinds = [...corpusNames, ...fileSourceKinds, 'clusters'] as const;
export type SourceKind = CorpusName | FileSourceKind | 'clusters';

export function isCorpus(kind: string): kind is CorpusName {
  return Object.hasOwn(builtinCorpora, kind);
}

/** The languages a corpus offers, or undefined for one that offers no choice (or is no corpus). */
export function corpusLanguages(kind: string): readonly string[] | undefined {
  return isCorpus(kind) && builtinCorpora[kind].languages.length ? builtinCorpora[kind].languages : undefined;
}

/** The labels a data set of this source carries; `label` is the user's label field (folder, jsonl, parquet). */
export function sourceLabels(kind: SourceKind, languages: readonly string[], label: string | null): string[] {
  if (isCorpus(kind)) return (builtinCorpora[kind] as CorpusInfo).labels(languages);
  switch (kind) {
    case 'folder':
      return [label ?? 'folder'];
    case 'jsonl':
    case 'parquet':
      return label ? [label] : [];
    case 'clusters':
      return ['cluster'];
    default:
      return [];
  }
}
