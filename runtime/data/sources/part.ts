import type { Doc } from '../types.js';

/**
 * A piece of a built-in corpus that is fetched and cached on its own (one language of the
 * LibreOffice help, the Brown corpus, ...). `build` reads the unpacked packages, in the order of
 * `packages` (with their checksums, to memoise work shared between parts), and returns cleaned documents (duplicates are removed by the caller).
 */
export interface CorpusPart {
  source: string;
  /** `en`, `de`, ... or `all`. */
  part: string;
  packages: string[];
  /** Bumped when `build` changes, so cached parts are rebuilt. */
  version: number;
  build(unpacked: string[], sha256s: string[]): Promise<Doc[]>;
}

export interface BuiltinSource {
  name: string;
  /** What it is, for `moec data fetch` listings. */
  summary: string;
  /** Languages it offers (empty: English only, not selectable). */
  languages: readonly string[];
  /** The parts for the languages asked for (empty: the source's default). */
  parts(languages: string[]): CorpusPart[];
}
