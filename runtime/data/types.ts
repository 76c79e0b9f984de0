// The data layer's plain types: documents as sources produce them, and the prepared (tokenised,
// split) data the training loop and evaluation read.

/** One document of a corpus: its text and its labels (label name -> value). */
export interface Doc {
  /** Stable id within the source (path, article, ...); the split hashes it. */
  id: string;
  text: string;
  labels: Record<string, string>;
  /**
   * Documents with the same split key land in the same split (translations of one help page, one
   * UDHR article in every language), so validation text is never seen in another language in training.
   * Defaults to `id`.
   */
  splitKey?: string;
}

/** The values one label takes; a window's label id indexes `values`. */
export interface LabelSpace {
  name: string;
  values: string[];
}

/** One split of a prepared text data set. Documents are ordered by label group, each followed by `eot`. */
export interface PreparedSplit {
  /** Every document's tokens, each document followed by the end-of-text token. */
  tokens: Uint32Array;
  /** docOffsets[i]..docOffsets[i+1] are document i's tokens (its end-of-text token included); length docs + 1. */
  docOffsets: Uint32Array;
  docIds: string[];
  /** Label name -> label id (index into PreparedData.labels[k].values) per document. */
  docLabels: Record<string, Uint32Array>;
  /**
   * Contiguous token ranges whose documents share every label of the data set (`labels`):
   * a window never crosses a group boundary. groupOffsets has length groups + 1.
   */
  groupOffsets: Uint32Array;
  /** Label name -> label id per group. */
  groupLabels: Record<string, Uint32Array>;
}

export interface LabelStats {
  label: string;
  value: string;
  documents: number;
  chars: number;
  bytes: number;
  tokens: number;
}

export interface DataStats {
  documents: { train: number; valid: number };
  tokens: { train: number; valid: number };
  chars: number;
  bytes: number;
  /** Per label value over both splits: documents, UTF-8 bytes and tokens (bytes / token shows the tokenizer's fit). */
  perLabel: LabelStats[];
  /** Documents dropped as exact duplicates. */
  duplicates: number;
}

export interface PreparedText {
  kind: 'text';
  name: string;
  tokenizer: 'gpt2' | 'bytes';
  vocab: number;
  /** Separates documents: 50256 (<|endoftext|>) for gpt2, 0 (NUL, removed from the text) for bytes. */
  eot: number;
  /** The data set's labels (DataSet.labels) and their values; windows keep these. */
  labels: LabelSpace[];
  train: PreparedSplit;
  valid: PreparedSplit;
  stats: DataStats;
  /** The cache entry it was read from or written to. */
  cacheDir: string;
}

/** One split of the synthetic cluster task: n samples of `patches` x `dim` floats. */
export interface ClusterSplit {
  n: number;
  /** n * patches * dim, sample-major then patch-major. */
  x: Float32Array;
  /** Binary target per sample, +1 or -1. */
  y: Int8Array;
  /** Cluster id per sample (the `cluster` label). */
  cluster: Uint32Array;
}

export interface PreparedClusters {
  kind: 'clusters';
  name: string;
  patches: number;
  dim: number;
  clusters: number;
  labels: LabelSpace[];
  train: ClusterSplit;
  valid: ClusterSplit;
  /** The unit vectors used: feature[k] and centre[k], each `dim` floats (for analyses). */
  features: Float32Array[];
  centres: Float32Array[];
}

export type PreparedData = PreparedText | PreparedClusters;
