// Benchmark: resolve, validate and expand a 1,000-trial sweep (10 x 10 x 10) of the .moe front end.
import { loadPipeline } from '../../compiler/frontend/index.js';

export const thousandTrialSweep = `data wiki {
  source libreoffice-help [en, de, fr, it]
  tokenizer bytes
  context 64
}

model mini {
  layers 2
  width 64
  heads 2
  moe {
    experts 16
    top 1
  }
}

sweep {
  train.lr in [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3]
  model.moe.experts in [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
  model.moe.balance in [0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009]
}
`;

export function expandThousand(): ReturnType<typeof loadPipeline> {
  return loadPipeline('bench.moe', { readFile: (f) => (f === 'bench.moe' ? thousandTrialSweep : undefined) });
}

export async function benchExpand(): Promise<{ trials: number; ms: number }> {
  expandThousand(); // warm up (ajv compile, JIT)
  const t0 = performance.now();
  const r = expandThousand();
  const ms = performance.now() - t0;
  if (!r.ok) throw new Error(`benchmark sweep has errors: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return { trials: r.trials.length, ms };
}
