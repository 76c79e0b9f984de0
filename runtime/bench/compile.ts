// Kernel compile time of whole sweeps: from the first pipeline created to the first training step
// finished, for every trial of a pipeline in turn on one device, as `moec run` does it. Each
// measurement runs in a fresh process (Dawn and Mesa keep compiled shaders per process) with its
// own Mesa shader cache directory: "cold" is a new empty one, "warm" reuses the one the cold run
// filled. "before" is the old path (pipelines one at a time, none shared, compiled by the driver
// inside step 1); "after" shares identical kernels across trials and compiles each with one
// workgroup before the first step. A `--baseline DIR` build (another commit's `tsc --outDir`) runs
// the same child code against its own compiler and runtime, as a third column.
// The modes alternate within each round, so the machine's load (shared, changing) hits each alike.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { loadPipeline as LoadPipeline } from '../../compiler/frontend/index.js';
import type { compileTrial as CompileTrialFn } from '../../compiler/lower/compile.js';
import type { Gpu as GpuClass } from '../gpu/device.js';
import type { loweringFor as LoweringFor } from '../gpu/lowering.js';
import type { GpuModel as GpuModelClass } from '../train/model.js';
import type { kernelKey as KernelKey, PipelineOptions } from '../executor/pipelines.js';

export interface CompileCase {
  name: string;
  file: string;
  preset?: string;
  /** Trials to take from the sweep (its first ones). */
  trials: number;
}

export const compileCases: CompileCase[] = [
  { name: 'quickstart (2 trials)', file: 'pipelines/quickstart.moe', trials: 2 },
  { name: 'token-vs-sequence, preset small (first 3 trials)', file: 'pipelines/token-vs-sequence.moe', preset: 'small', trials: 3 },
];

interface ChildResult {
  kernels: number;
  unique: number;
  seconds: number;
  perTrial: number[];
  /** Of `seconds`: creating pipelines and bind groups (up to the first kernel dispatched), summed over trials. */
  createSeconds: number;
}

/** One way of building the pipelines: options of this build's executor, or another build's defaults. */
interface Mode {
  label: string;
  options: PipelineOptions;
  /** A build folder (`tsc --outDir`) to load compiler and runtime from; this build when absent. */
  build?: string;
}

const before: Mode = { label: 'before', options: { share: false, warm: false } };
const after: Mode = { label: 'after', options: {} };

/** The build this file is part of: dist/ (this file is dist/runtime/bench/compile.js). */
const ownBuild = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const load = async <T>(build: string, module: string): Promise<T> => (await import(pathToFileURL(path.join(build, module)).href)) as T;

/** Runs in the child: every trial's executor, then one training step each, timed from the first pipeline. */
async function child(c: CompileCase, mode: Mode): Promise<ChildResult> {
  const build = mode.build ?? ownBuild;
  const { loadPipeline } = await load<{ loadPipeline: typeof LoadPipeline }>(build, 'compiler/frontend/index.js');
  const { compileTrial } = await load<{ compileTrial: typeof CompileTrialFn }>(build, 'compiler/lower/compile.js');
  const { Gpu } = await load<{ Gpu: typeof GpuClass }>(build, 'runtime/gpu/device.js');
  const { loweringFor } = await load<{ loweringFor: typeof LoweringFor }>(build, 'runtime/gpu/lowering.js');
  const { GpuModel } = await load<{ GpuModel: typeof GpuModelClass }>(build, 'runtime/train/model.js');
  const { kernelKey } = await load<{ kernelKey: typeof KernelKey }>(ownBuild, 'runtime/executor/pipelines.js');
  const loaded = loadPipeline(c.file, c.preset ? { preset: c.preset } : {});
  if (!loaded.ok) throw new Error(`${c.file} does not load`);
  const gpu = await Gpu.open();
  try {
    const lowering = loweringFor(gpu);
    const trials = loaded.trials.slice(0, c.trials).map((t) => compileTrial(t.config, t.id, lowering));
    const keys = new Set(trials.flatMap((t) => t.plan.kernels.map(kernelKey)));
    const perTrial: number[] = [];
    let createSeconds = 0;
    const start = performance.now();
    for (const compiled of trials) {
      const t0 = performance.now();
      // The first progress report comes once every pipeline and bind group exists, before any dispatch.
      let created: number | undefined;
      const onProgress = () => void (created ??= performance.now());
      const model = await GpuModel.create(gpu, compiled, 'bench', { ...mode.options, onProgress });
      createSeconds += ((created ?? performance.now()) - t0) / 1000;
      const { batch, context } = compiled.spec;
      const tokens = new Uint32Array(batch * context);
      model.initParams(1);
      model.trainStep(1, 1e-3, 1, [{ tokens, targets: tokens }]);
      await model.trainLoss();
      perTrial.push((performance.now() - t0) / 1000);
      model.destroy();
    }
    return { kernels: trials.reduce((a, t) => a + t.plan.kernels.length, 0), unique: keys.size, seconds: (performance.now() - start) / 1000, perTrial, createSeconds };
  } finally {
    gpu.destroy();
  }
}

function measure(c: CompileCase, mode: Mode, cacheDir: string): ChildResult {
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [script, '--child', JSON.stringify(c), JSON.stringify(mode)], {
    env: { ...process.env, MESA_SHADER_CACHE_DIR: cacheDir, MESA_SHADER_CACHE_DISABLE: 'false' },
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`compile bench child failed (${c.name}, ${mode.label}):\n${r.stderr}`);
  return JSON.parse(line) as ChildResult;
}

/** A cold measurement (new empty Mesa cache) and, if asked, a warm one on the cache it filled. */
function coldAndWarm(c: CompileCase, mode: Mode, warm: boolean): { cold: ChildResult; warm?: ChildResult } {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-mesa-cache-'));
  try {
    const cold = measure(c, mode, dir);
    return warm ? { cold, warm: measure(c, mode, dir) } : { cold };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Round r runs the modes forwards when r is even, backwards when odd: each mode leads as often. */
const orderOf = <T>(xs: T[], round: number) => (round % 2 ? [...xs].reverse() : xs);

export interface CompileBenchOptions {
  cases?: CompileCase[];
  rounds?: number;
  /** Another commit's build folder, measured with its own defaults as a third mode. */
  baseline?: string;
  log?: (line: string) => void;
}

/** The markdown table `npm run bench -- --only compile` prints: before / after (/ baseline), cold and warm, medians of alternating rounds. */
export function compileBench(opts: CompileBenchOptions = {}): void {
  const rounds = opts.rounds ?? 2;
  const log = opts.log ?? ((l: string) => console.error(`compile bench: ${l}`));
  const modes: Mode[] = [before, after, ...(opts.baseline ? [{ label: `baseline ${path.basename(opts.baseline)}`, options: {}, build: path.resolve(opts.baseline) }] : [])];
  console.log(`\n## kernel compile time (seconds from the first pipeline to the first step of every trial done; fresh process each; median of ${rounds} alternating rounds)\n`);
  const head = modes.flatMap((m) => [`${m.label}, cold`, `${m.label}, warm`]);
  console.log(`| pipeline | kernels (distinct) | ${head.join(' | ')} | cold: before / after | warm: before / after |`);
  console.log(`|---|---:|${head.map(() => '---:').join('|')}|---:|---:|`);
  for (const c of opts.cases ?? compileCases) {
    const seen = new Map<string, { cold: ChildResult[]; warm: ChildResult[] }>(modes.map((m) => [m.label, { cold: [], warm: [] }]));
    for (let r = 0; r < rounds; r++) {
      for (const m of orderOf(modes, r)) {
        const got = coldAndWarm(c, m, true);
        seen.get(m.label)!.cold.push(got.cold);
        seen.get(m.label)!.warm.push(got.warm!);
        log(`${c.name}, round ${r + 1}, ${m.label}: cold ${got.cold.seconds.toFixed(1)} s (creating ${got.cold.createSeconds.toFixed(1)} s), warm ${got.warm!.seconds.toFixed(1)} s`);
      }
    }
    const med = (label: string, k: 'cold' | 'warm') => median(seen.get(label)![k].map((x) => x.seconds));
    const cells = modes.flatMap((m) => [med(m.label, 'cold').toFixed(1), med(m.label, 'warm').toFixed(1)]);
    const first = seen.get('after')!.cold[0]!;
    console.log(`| ${c.name} | ${first.kernels} (${first.unique}) | ${cells.join(' | ')} | ${(med('before', 'cold') / med('after', 'cold')).toFixed(2)}× | ${(med('before', 'warm') / med('after', 'warm')).toFixed(2)}× |`);
    for (const m of modes) {
      const s = seen.get(m.label)!;
      console.log(`\n  ${m.label}: cold ${s.cold.map((x) => x.seconds.toFixed(1)).join(', ')} s (per trial ${s.cold.map((x) => x.perTrial.map((t) => t.toFixed(1)).join(' + ')).join('; ')}); warm ${s.warm.map((x) => x.seconds.toFixed(1)).join(', ')} s`);
    }
    console.log('');
  }
}

/**
 * `npm run bench -- --only compile-concurrency`: the same cold compile with at most 1, 2, 4, 8
 * pipelines created at once (everything else as `moec run` does it), the levels alternating by round.
 */
export function compileConcurrencyBench(opts: { cases?: CompileCase[]; levels?: number[]; rounds?: number; log?: (line: string) => void } = {}): void {
  const levels = opts.levels ?? [1, 2, 4, 8];
  const rounds = opts.rounds ?? 2;
  const log = opts.log ?? ((l: string) => console.error(`compile bench: ${l}`));
  console.log(`\n## pipelines created at once (cold Mesa cache, fresh process each; median of ${rounds} alternating rounds)\n`);
  console.log(`| pipeline | ${levels.map((n) => `${n} at once: total s (creating s)`).join(' | ')} | ${levels.slice(1).map((n) => `1 / ${n}`).join(' | ')} |`);
  console.log(`|---|${levels.map(() => '---:').join('|')}|${levels.slice(1).map(() => '---:').join('|')}|`);
  for (const c of opts.cases ?? compileCases.slice(1)) {
    const seen = new Map<number, ChildResult[]>(levels.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      for (const n of orderOf(levels, r)) {
        const got = coldAndWarm(c, { label: `${n} at once`, options: { concurrency: n } }, false).cold;
        seen.get(n)!.push(got);
        log(`${c.name}, round ${r + 1}, ${n} at once: ${got.seconds.toFixed(1)} s (creating ${got.createSeconds.toFixed(1)} s)`);
      }
    }
    const total = (n: number) => median(seen.get(n)!.map((x) => x.seconds));
    const create = (n: number) => median(seen.get(n)!.map((x) => x.createSeconds));
    console.log(`| ${c.name} | ${levels.map((n) => `${total(n).toFixed(1)} (${create(n).toFixed(2)})`).join(' | ')} | ${levels.slice(1).map((n) => `${(total(1) / total(n)).toFixed(2)}×`).join(' | ')} |`);
    console.log(`\n  every round: ${levels.map((n) => `${n}: ${seen.get(n)!.map((x) => `${x.seconds.toFixed(1)} (${x.createSeconds.toFixed(2)})`).join(', ')}`).join('; ')}\n`);
  }
}

if (process.argv[2] === '--child') {
  const c = JSON.parse(process.argv[3]!) as CompileCase;
  child(c, JSON.parse(process.argv[4]!) as Mode).then(
    (r) => { console.log(JSON.stringify(r)); process.exit(0); },
    (e) => { console.error(e?.stack ?? e); process.exit(1); },
  );
}
