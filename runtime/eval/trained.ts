// A finished (or checkpointed) trial read back from a run directory: its configuration and the
// weights of one checkpoint, for `moec sample`, `moec eval` and `moec export`.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrialConfig } from '../../compiler/frontend/types.js';
import { compileTrial, type CompiledTrial } from '../../compiler/lower/compile.js';
import { numel } from '../../compiler/graph/ir.js';
import { UserError } from '../../grammar/user-error.js';
import type { LoadedTensor } from '../store/safetensors.js';
import { DEFAULT_RUNS, findTrial } from '../store/find.js';
import { RunStore, type TrialRecord } from '../store/run-store.js';
import type { PlanModel } from '../train/model.js';
import { restoreState } from '../train/checkpoint.js';

export interface TrainedTrial {
  record: TrialRecord;
  /** The trial's directory (runs/SWEEP/ID). */
  dir: string;
  /** The sweep's directory (runs/SWEEP). */
  sweepDir: string;
  checkpoint: string;
  step: number;
  tensors: Map<string, LoadedTensor>;
}

/** The moec version, from the package.json beside the built code. */
export function moecVersion(): string {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/**
 * A trial by id (as `moec show` finds it) at its latest checkpoint, or a checkpoint file
 * (runs/SWEEP/ID/checkpoints/step-N.safetensors, or the trial's initial.safetensors).
 */
export function openTrained(query: string, runs = DEFAULT_RUNS): TrainedTrial {
  if (query.endsWith('.safetensors')) {
    if (!existsSync(query) || !statSync(query).isFile()) throw new UserError('no such checkpoint file', { where: query, hint: "'moec show TRIAL' lists a trial's checkpoints" });
    const file = path.resolve(query);
    const trialDir = path.basename(path.dirname(file)) === 'checkpoints' ? path.dirname(path.dirname(file)) : path.dirname(file);
    const sweepDir = path.dirname(trialDir);
    if (!RunStore.exists(sweepDir) || !existsSync(path.join(trialDir, 'config.json'))) {
      throw new UserError('this checkpoint is not inside a moec run (runs/SWEEP/TRIAL/checkpoints/), so its configuration is unknown', { where: query, hint: 'name the trial instead, or keep the checkpoint in its run directory' });
    }
    const ts = RunStore.open(sweepDir).trial(path.basename(trialDir));
    const m = /step-(\d+)\.safetensors$/.exec(file);
    const step = m ? Number(m[1]) : 0;
    const ck = ts.loadCheckpoint({ step, path: file, bytes: statSync(file).size });
    return { record: ts.readConfig()!, dir: trialDir, sweepDir, checkpoint: file, step, tensors: ck.tensors };
  }
  const found = findTrial(runs, query);
  const ts = found.store.trial(found.id);
  const record = ts.readConfig();
  const ref = ts.latestCheckpoint();
  if (!record || !ref) throw new UserError(`trial ${found.id} has no checkpoint yet`, { where: ts.dir, hint: `train it first: moec run ${found.store.index.file} --resume` });
  const ck = ts.loadCheckpoint(ref);
  return { record, dir: ts.dir, sweepDir: found.store.dir, checkpoint: ref.path, step: ref.step, tensors: ck.tensors };
}

/** Refuses the synthetic cluster task's patch model where a language model is needed. */
export function languageModelConfig(t: TrainedTrial, what: string): TrialConfig {
  const c = t.record.config;
  if (c.data[c.train.data]?.source.kind === 'clusters') {
    throw new UserError(`trial ${t.record.id} is the patch model of the synthetic cluster task, not a language model: ${what} needs a language model`, { where: t.dir });
  }
  return c;
}

/** The trial compiled for another batch size (sampling runs one sequence at a time). */
export function compileFor(c: TrialConfig, batch: number, name: string): CompiledTrial {
  const cfg: TrialConfig = { ...c, train: { ...c.train, batch, accumulate: 1 } };
  return compileTrial(cfg, name);
}

/** The parameters of a checkpoint in the plan's flat layout (optimiser state is not needed). */
export function flatParams(compiled: CompiledTrial, tensors: Map<string, { shape?: number[]; data: Float32Array }>, where: string): Float32Array {
  const flat = new Float32Array(compiled.layout.total);
  for (const [name, offset] of compiled.layout.offsets) {
    const t = tensors.get(name);
    const n = numel(compiled.graph.get(name).shape);
    if (!t || t.data.length !== n) throw new UserError(`checkpoint has ${t ? `${t.data.length} values` : 'no tensor'} for '${name}' (the model needs ${n})`, { where, hint: 'the checkpoint belongs to another configuration' });
    flat.set(t.data, offset);
  }
  return flat;
}

export function loadWeights(model: PlanModel, t: TrainedTrial): void {
  model.writeParams(flatParams(model.compiled, t.tensors, t.checkpoint));
  restoreState(model, t.tensors, t.checkpoint);
}
