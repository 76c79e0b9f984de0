// The front end's entry points: a .moe file -> a resolved, validated pipeline, its trials, and
// diagnostics. Never throws for any input: every problem is a diagnostic.
import path from 'node:path';
import { didYouMean, error, hasErrors, sortDiagnostics, warning, type Diagnostic } from '../../grammar/diagnostics.js';
import type { Span } from '../../grammar/span.js';
import { leavesFolder, loadScope, PATH_HINT, readFromDisk, type ReadFile, type Scope } from './load.js';
import { applyOverrides, Ctx, presetOverrides, presetSeeds, resolveView, type Override } from './resolve.js';
import { expand, parseSweep } from './sweep.js';
import type { Pipeline, Trial } from './types.js';
import { validatePipeline } from './validate.js';

export type * from './types.js';
export { countParams, denseFfnFor } from './params.js';
export { canonicalJson, trialId } from './sweep.js';
export { pipelineSchema } from './schema.js';

export interface LoadOptions {
  /** Apply `preset NAME { ... }` (the `--preset` flag). */
  preset?: string;
  /** Read files from somewhere other than disk (tests); undefined means "no such file". */
  readFile?: ReadFile;
  /** Validate every trial (default true). `moec check` does; the benchmark measures both. */
  validateTrials?: boolean;
}

export interface LoadResult {
  /** The resolved base pipeline (sweep spec included); undefined when there are errors. */
  pipeline: Pipeline | undefined;
  /** Every trial, expanded and validated; empty when there are errors. */
  trials: Trial[];
  /** Errors and warnings, sorted by position. */
  diagnostics: Diagnostic[];
  /** File -> text of every file read, for rendering diagnostics. */
  sources: Map<string, string>;
  /** Names of the presets the file defines. */
  presets: string[];
  ok: boolean;
  /** Where in the source a resolved field was written, e.g. spanOf('/train/batch'); its nearest written parent otherwise. */
  spanOf(ptr: string): Span | undefined;
}

/** Load, resolve, validate and expand a .moe file. */
export function loadPipeline(file: string, opts: LoadOptions = {}): LoadResult {
  const sources = new Map<string, string>();
  try {
    const { scope, diagnostics } = loadScope(file, opts.readFile ?? readFromDisk);
    for (const [k, v] of scope.sources) sources.set(k, v);
    // An unreadable root file has nothing to resolve: say only that, not the cascade of missing blocks.
    if (scope.sources.size === 0) return { pipeline: undefined, trials: [], diagnostics, sources, presets: [], ok: false, spanOf: noSpan };
    const r = resolveScope(scope, opts, diagnostics);
    const sorted = sortDiagnostics(diagnostics);
    const ok = !hasErrors(sorted);
    const spanOf = (ptr: string) => r.ctx?.spanOf(ptr);
    return { pipeline: ok ? r.pipeline : undefined, trials: ok ? r.trials : [], diagnostics: sorted, sources, presets: [...scope.preset.keys()], ok, spanOf };
  } catch (e) {
    return {
      pipeline: undefined, trials: [], sources, presets: [], ok: false, spanOf: noSpan,
      diagnostics: [error(`internal error in the .moe front end: ${(e as Error).message}`, undefined, 'this is a bug in moec; please report it with the file that caused it')],
    };
  }
}

const noSpan = () => undefined;

function resolveScope(scope: Scope, opts: LoadOptions, diagnostics: Diagnostic[]): { pipeline: Pipeline | undefined; trials: Trial[]; ctx?: Ctx } {
  let overrides: Override[] = [];
  const preset = opts.preset ?? null;
  if (preset !== null) {
    const def = scope.preset.get(preset);
    if (!def) {
      const names = [...scope.preset.keys()];
      diagnostics.push(error(`unknown preset '${preset}'${didYouMean(preset, names)}`, undefined, names.length ? `presets in ${scope.root}: ${names.join(', ')}` : `${scope.root} defines no presets`));
      return { pipeline: undefined, trials: [] };
    }
    overrides = presetOverrides(def, scope, diagnostics);
  } else {
    // Check every preset's paths even when none is applied.
    for (const def of scope.preset.values()) presetOverrides(def, scope, diagnostics);
  }
  const ctx = new Ctx();
  const pipeline = resolveView(scope, applyOverrides(scope, overrides), preset, ctx);
  validatePipeline(pipeline, ctx);
  dataPathWarnings(scope, pipeline, ctx);
  diagnostics.push(...ctx.diagnostics);
  const sweep = parseSweep(scope.sweep, scope, diagnostics);
  const seeds = preset !== null ? presetSeeds(scope.preset.get(preset)!, diagnostics) : undefined;
  if (seeds && !sweep) diagnostics.push(error(`preset '${preset}' sets seeds, but the file has no sweep block`, seeds.span, 'add sweep { seeds N }, or remove seeds from the preset'));
  if (seeds && sweep) {
    sweep.seeds = seeds.seeds;
    sweep.seedSpan = seeds.span;
    sweep.spec.seeds = seeds.seeds;
  }
  pipeline.sweep = sweep?.spec ?? null;
  if (hasErrors(diagnostics)) return { pipeline, trials: [], ctx };
  const ex = expand(scope, overrides, pipeline, sweep, preset, { validate: opts.validateTrials ?? true });
  diagnostics.push(...ex.diagnostics);
  return { pipeline, trials: ex.trials, ctx };
}

/** A data source outside the pipeline's folder is read, but said: the pipeline is then not self-contained. */
function dataPathWarnings(scope: Scope, p: Pipeline, ctx: Ctx): void {
  const rootDir = path.dirname(path.resolve(scope.root));
  for (const d of Object.values(p.data)) {
    if (!d.source.path) continue;
    const outside = leavesFolder(rootDir, d.source.path);
    if (outside) ctx.diagnostics.push(warning(`data set '${d.name}' reads ${outside}, outside the pipeline's folder ${rootDir}`, ctx.spanOf(`/data/${d.name}/source/path`), PATH_HINT));
  }
}

/** The trials of a loaded pipeline (what `moec expand` prints). */
export function expandTrials(r: LoadResult): Trial[] {
  return r.trials;
}
