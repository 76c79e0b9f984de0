// What `moec eval --data` names: a data set of the trial's own pipeline (NAME[.valid|.train]), a
// data block of any .moe file (FILE.moe:NAME[.split], with its own tokenizer, checked against the
// model's), a built-in corpus (brown, fortunes[de,it], ...), or a user's text file, folder of text
// files (folder name = label), JSONL or Parquet file. Named sources other than data sets are read
// whole (valid 0: every document is scored) with the model's tokenizer and context.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { corpusLanguages, corpusNames, isCorpus, sourceLabels } from '../../compiler/frontend/corpora.js';
import { loadPipeline } from '../../compiler/frontend/index.js';
import type { DataSet, SourceKind, TrialConfig } from '../../compiler/frontend/types.js';
import { didYouMean } from '../../grammar/diagnostics.js';
import { UserError } from '../../grammar/user-error.js';

export interface EvalData {
  ds: DataSet;
  split: 'train' | 'valid';
  /** As the user named it, for the report. */
  label: string;
}

function splitOf(name: string): { base: string; split: 'train' | 'valid' | null } {
  const m = /^(.*)\.(valid|train)$/.exec(name);
  return m ? { base: m[1]!, split: m[2] as 'train' | 'valid' } : { base: name, split: null };
}

export function resolveEvalData(spec: string, c: TrialConfig, o: { textField?: string; labelField?: string; limit?: number } = {}): EvalData {
  const own = c.data[c.train.data]!;
  const base = (kind: SourceKind, languages: string[], p: string | null, name: string): DataSet => ({
    ...own, name, source: { kind, languages, path: p }, valid: 0, limit: o.limit ?? 0,
    text: o.textField ?? 'text', label: o.labelField ?? null, labels: sourceLabels(kind, languages, o.labelField ?? null),
  });
  // FILE.moe:NAME[.split]
  const moe = /^(.+\.moe):(.+)$/.exec(spec);
  if (moe) {
    const load = loadPipeline(moe[1]!);
    if (!load.ok || !load.pipeline) throw new UserError(`${moe[1]} does not load (run 'moec check ${moe[1]}')`, { where: '--data' });
    const { base: name, split } = splitOf(moe[2]!);
    const ds = load.pipeline.data[name];
    if (!ds) throw new UserError(`${moe[1]} has no data set '${name}'`, { where: '--data', hint: `it defines: ${Object.keys(load.pipeline.data).join(', ')}` });
    return { ds: { ...ds, context: c.model.context }, split: split ?? (ds.valid > 0 ? 'valid' : 'train'), label: spec };
  }
  // A data set of the trial's own pipeline.
  const { base: name, split } = splitOf(spec);
  if (c.data[name] && !existsSync(spec)) {
    const ds = c.data[name]!;
    return { ds: { ...ds, context: c.model.context }, split: split ?? (ds.valid > 0 ? 'valid' : 'train'), label: spec };
  }
  // A built-in corpus, optionally with languages: fortunes[de,it]
  const bi = /^([a-z-]+)(?:\[([a-z, -]*)\])?$/.exec(spec);
  if (bi && isCorpus(bi[1]!) && !existsSync(spec)) {
    const corpus = bi[1]!;
    const langs = (bi[2] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const offered = corpusLanguages(corpus);
    if (langs.length && !offered) {
      throw new UserError(`--data '${spec}': corpus '${corpus}' has no languages to choose from`, { where: '--data', hint: `write --data ${corpus}; languages exist for: ${corpusNames.filter((n) => corpusLanguages(n)).join(', ')}` });
    }
    const unknown = langs.find((l) => !offered!.includes(l));
    if (unknown) throw new UserError(`--data '${spec}': corpus '${corpus}' has no language '${unknown}'${didYouMean(unknown, offered!)}`, { where: '--data', hint: `languages: ${offered!.join(', ')}` });
    return { ds: base(corpus, langs, null, spec), split: 'train', label: spec };
  }
  if (!existsSync(spec)) {
    throw new UserError(`--data '${spec}' is neither a data set of the trial, a built-in corpus nor a file or folder`, {
      where: '--data', hint: `name one of the trial's data sets (${Object.keys(c.data).join(', ')}), a corpus (${corpusNames.join(', ')}), FILE.moe:NAME, or a .txt/.jsonl/.parquet file or folder`,
    });
  }
  const abs = path.resolve(spec);
  const kind: SourceKind = statSync(abs).isDirectory() ? 'folder' : /\.jsonl$/i.test(abs) ? 'jsonl' : /\.parquet$/i.test(abs) ? 'parquet' : 'text';
  return { ds: base(kind, [], abs, path.basename(spec)), split: 'train', label: spec };
}
