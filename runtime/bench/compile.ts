// Kernel compile time of whole sweeps: from the first pipeline created to the first training step
// finished, for every trial of a pipeline in turn on one device, as `moec run` does it. Each
// measurement runs in a fresh process (Dawn and Mesa keep compiled shaders per process) with its
// own Mesa shader cache directory: "cold" is a new empty one, "warm" reuses the one the cold run
// filled. "before" is the old path (pipelines one at a time, none shared, compiled by the driver
// inside step 1); "after" creates them concurrently, shares identical kernels across trials and
// compiles each with one workgroup before the first step.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline } from '../../compiler/frontend/index.js';
import { compileTrial } from '../../compiler/lower/compile.js';
import { Gpu } from '../gpu/device.js';
import { loweringFor } from '../gpu/lowering.js';
import { GpuModel } from '../train/model.js';
import { kernelKey, type PipelineOptions } from '../executor/pipelines.js';

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

interface ChildResult { kernels: number; unique: number; seconds: number; perTrial: number[] }

const modes: Record<'before' | 'after', PipelineOptions> = {
  before: { concurrency: 1, share: false, warm: false },
  after: {},
};

/** Runs in the child: every trial's executor, then one training step each, timed from the first pipeline. */
async function child(c: CompileCase, mode: keyof typeof modes): Promise<ChildResult> {
  const load = loadPipeline(c.file, c.preset ? { preset: c.preset } : {});
  if (!load.ok) throw new Error(`${c.file} does not load`);
  const gpu = await Gpu.open();
  try {
    const lowering = loweringFor(gpu);
    const trials = load.trials.slice(0, c.trials).map((t) => compileTrial(t.config, t.id, lowering));
    const keys = new Set(trials.flatMap((t) => t.plan.kernels.map(kernelKey)));
    const perTrial: number[] = [];
    const start = performance.now();
    for (const compiled of trials) {
      const t0 = performance.now();
      const model = await GpuModel.create(gpu, compiled, 'bench', modes[mode]);
      const { batch, context } = compiled.spec;
      const tokens = new Uint32Array(batch * context);
      model.initParams(1);
      model.trainStep(1, 1e-3, 1, [{ tokens, targets: tokens }]);
      await model.trainLoss();
      perTrial.push((performance.now() - t0) / 1000);
      model.destroy();
    }
    return { kernels: trials.reduce((a, t) => a + t.plan.kernels.length, 0), unique: keys.size, seconds: (performance.now() - start) / 1000, perTrial };
  } finally {
    gpu.destroy();
  }
}

function measure(c: CompileCase, mode: keyof typeof modes, cacheDir: string): ChildResult {
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [script, '--child', JSON.stringify(c), mode], {
    env: { ...process.env, MESA_SHADER_CACHE_DIR: cacheDir, MESA_SHADER_CACHE_DISABLE: 'false' },
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`compile bench child failed (${c.name}, ${mode}):\n${r.stderr}`);
  return JSON.parse(line) as ChildResult;
}

/** The markdown table `npm run bench -- --only compile` prints. */
export function compileBench(cases = compileCases): void {
  console.log('\n## kernel compile time (seconds from the first pipeline to the first step of every trial done; fresh process each)\n');
  console.log('| pipeline | kernels (distinct) | before, cold | after, cold | cold gain | before, warm | after, warm | warm gain |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of cases) {
    const row: Record<string, ChildResult> = {};
    for (const mode of ['before', 'after'] as const) {
      const dir = mkdtempSync(path.join(tmpdir(), 'moec-mesa-cache-'));
      try {
        row[`${mode} cold`] = measure(c, mode, dir);
        row[`${mode} warm`] = measure(c, mode, dir);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const s = (k: string) => row[k]!.seconds.toFixed(1);
    const gain = (a: string, b: string) => `${(row[a]!.seconds / row[b]!.seconds).toFixed(2)}×`;
    console.log(`| ${c.name} | ${row['after cold']!.kernels} (${row['after cold']!.unique}) | ${s('before cold')} | ${s('after cold')} | ${gain('before cold', 'after cold')} | ${s('before warm')} | ${s('after warm')} | ${gain('before warm', 'after warm')} |`);
    console.log(`\n  per trial (s): ${Object.entries(row).map(([k, r]) => `${k} ${r.perTrial.map((x) => x.toFixed(1)).join(' + ')}`).join('; ')}\n`);
  }
}

if (process.argv[2] === '--child') {
  const c = JSON.parse(process.argv[3]!) as CompileCase;
  child(c, process.argv[4] as keyof typeof modes).then(
    (r) => { console.log(JSON.stringify(r)); process.exit(0); },
    (e) => { console.error(e?.stack ?? e); process.exit(1); },
  );
}
