// A run directory holding one trial with a checkpoint, for the after-training commands' tests: the
// trial comes from real .moe text, its weights are the seed's initialisation plus noise (so every
// tensor, biases and LayerNorms included, matters), saved through the run store as training saves.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadPipeline, type Trial } from '../../../compiler/frontend/index.js';
import { compileTrial, type CompiledTrial } from '../../../compiler/lower/compile.js';
import { rng } from '../../../compiler/reference/random.js';
import { RunStore } from '../../../runtime/store/run-store.js';
import { checkpointTensors } from '../../../runtime/train/checkpoint.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';

export interface FixtureTrial {
  runs: string;
  sweepDir: string;
  trial: Trial;
  compiled: CompiledTrial;
  model: GpuModel;
}

/** Writes `moe` (a .moe file whose data reads `text`) and a run of its first trial under `dir`. */
export async function fixtureTrial(dir: string, moe: string, text: string, noise = 0.05): Promise<FixtureTrial> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'corpus.txt'), text);
  const file = path.join(dir, 'fixture.moe');
  writeFileSync(file, moe);
  const load = loadPipeline(file);
  if (!load.ok) throw new Error(`fixture .moe does not load: ${load.diagnostics.map((d) => d.message).join('; ')}`);
  const trial = load.trials[0]!;
  const compiled = compileTrial(trial.config, trial.id);
  const model = await GpuModel.create(await testGpu(), compiled);
  model.initParams(trial.seed);
  const r = rng(7);
  model.writeParams((await model.readFlat('params')).map((v) => v + noise * (r() - 0.5)));
  const runs = path.join(dir, 'runs');
  const sweepDir = path.join(runs, 'fixture');
  const store = RunStore.create(sweepDir, { sweep: 'fixture', file, preset: null, adapter: 'test', trials: [{ id: trial.id, name: trial.name }] });
  const ts = store.trial(trial.id);
  ts.writeConfig({ id: trial.id, name: trial.name, params: trial.params, seed: trial.seed, baseline: trial.baseline, matches: trial.matches ?? null, params_count: trial.params_count, config: trial.config });
  ts.saveCheckpoint(3, await checkpointTensors(model), { step: 3 });
  return { runs, sweepDir, trial, compiled, model };
}

/** A .moe pipeline of a tiny byte-level model on corpus.txt; `moe` is the body of a moe block or empty (dense). */
export function tinyPipeline(moe: string, o: { batch?: number; context?: number; layers?: number } = {}): string {
  return `data text {
  source text "corpus.txt"
  tokenizer bytes
  context ${o.context ?? 12}
  valid 20%
}
model tiny {
  layers ${o.layers ?? 2}
  width 32
  heads 4
  ffn 48
${moe ? `  moe {\n${moe}\n  }` : ''}
}
train {
  steps 3
  batch ${o.batch ?? 3}
  lr 1e-3
  seed 1
}
evaluate {
  every 3
  perplexity text.valid
}
`;
}
