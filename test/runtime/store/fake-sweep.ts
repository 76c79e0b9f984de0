// A realistic finished sweep written through the RunStore API, for the store, report and CLI tests:
// 3 configurations (top 1, 2, 3 of 4 experts, 2 MoE layers) × 2 seeds; top=3 seed=2 failed.
// Numbers are closed-form so tests can state the expected means and standard deviations.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import type { Trial } from '../../../compiler/frontend/types.js';
import { RunStore, type TrialRecord } from '../../../runtime/store/run-store.js';

const MOE = `data wiki {
  source libreoffice-help [en, de, fr, it]
  tokenizer bytes
  context 32
  valid 5%
}
model m {
  layers 2
  width 32
  heads 2
  ffn 2x
  moe {
    experts 4
    top 2
    unit token
  }
}
train {
  steps 40
  batch 4
  seed 1
}
evaluate {
  every 10
  average 2
  perplexity wiki.valid
  experts wiki.valid by language
}
sweep {
  model.moe.top in [1, 2, 3]
  seeds 2
}
`;

let cached: { file: string; trials: Trial[] } | undefined;
export function fakeTrials(): { file: string; trials: Trial[] } {
  if (cached) return cached;
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'moec-fake-moe-')), 'fake.moe');
  writeFileSync(file, MOE);
  const r = loadPipeline(file);
  if (!r.ok) throw new Error(`fake sweep does not load: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  cached = { file, trials: r.trials };
  return cached;
}

export function fakeTrialRecord(id: string, name: string, params: Record<string, string>, seed: number): TrialRecord {
  const t = fakeTrials().trials[0]!;
  return { id, name, params, seed, baseline: null, matches: null, params_count: t.params_count, config: { ...t.config, train: { ...t.config.train, seed } } };
}

export const LANGS = ['en', 'de', 'fr', 'it'];
export const EVAL_STEPS = [10, 20, 30, 40];
/** valid_ppl of top=k, seed=s at an eval step: 10k + 2s at step 40, one more at step 30, and so on. */
export const fakePpl = (k: number, s: number, step: number) => 10 * k + 2 * s + (40 - step) / 10;
export const fakeTokensPerSec = (k: number, s: number) => 1000 - 100 * k + s;
/** Tokens of language li routed to expert e at layer l: layer 0 prefers expert li, layer 1 expert (li+1)%4; expert 0 is overloaded early on. */
export const fakeCount = (l: number, li: number, e: number, step: number) => (e === (li + l) % 4 ? 60 : 10) + step + (e === 0 ? 3 * (40 - step) : 0);

/** Write the fake sweep under <root>/fake; returns the store. */
export function writeFakeSweep(root = mkdtempSync(path.join(tmpdir(), 'moec-runs-'))): RunStore {
  const { file, trials } = fakeTrials();
  const store = RunStore.create(path.join(root, 'fake'), { sweep: 'fake', file, preset: null, adapter: 'llvmpipe (LLVM 19)', trials: trials.map((t) => ({ id: t.id, name: t.name })) });
  for (const trial of trials) {
    const k = Number(trial.params['model.moe.top']);
    const s = trial.seed;
    const failed = k === 3 && s === 2;
    const ts = store.trial(trial.id);
    ts.writeConfig(trial);
    ts.writePlan({ kernels: 20 + k, buffers: 40 });
    const started = '2026-11-23T10:00:00.000Z';
    ts.writeStatus({ state: 'running', step: 0, steps: 40, started, wall_s: 0, tokens_per_s: 0, adapter: 'llvmpipe' });
    for (let step = 1; step <= 40; step++) {
      if (failed && step > 20) break;
      ts.appendMetric({ kind: 'train', step, loss: Math.log(fakePpl(k, s, step)) + 0.1, lr: 3e-3, tokens_per_s: fakeTokensPerSec(k, s), time_s: step * 0.5 });
      if (step % 10 === 0) {
        const ppl = fakePpl(k, s, step);
        ts.appendMetric({ kind: 'eval', step, valid_loss: Math.log(ppl), valid_ppl: ppl, data: 'wiki.valid' });
        ts.appendExperts({
          step, data: 'wiki.valid', label: 'language',
          layers: [0, 1].map((l) => ({ layer: l, counts: Object.fromEntries(LANGS.map((lang, li) => [lang, [0, 1, 2, 3].map((e) => fakeCount(l, li, e, step))])) })),
        });
        ts.saveCheckpoint(step, { 'wte.weight': { shape: [2], data: new Float32Array([step, k]) } }, { data: { position: step } });
      }
    }
    ts.writeStatus(failed
      ? { state: 'failed', step: 20, steps: 40, error: 'GPU device lost: out of memory', started, finished: '2026-11-23T10:00:10.000Z', wall_s: 10, tokens_per_s: fakeTokensPerSec(k, s), adapter: 'llvmpipe' }
      : { state: 'done', step: 40, steps: 40, started, finished: '2026-11-23T10:00:20.000Z', wall_s: 20 + k, tokens_per_s: fakeTokensPerSec(k, s), adapter: 'llvmpipe' });
  }
  return store;
}
