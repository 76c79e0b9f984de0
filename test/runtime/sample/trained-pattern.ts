// A tiny byte-level MoE trained for real (through `moec run`) on a repeating pattern, shared by the
// sampling and evaluation tests.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { main } from '../../../runtime/cli/main.js';

export const PATTERN = 'abcdefghij';

export interface PatternRun {
  dir: string;
  runs: string;
  sweepDir: string;
  file: string;
}

/** Trains the pattern pipeline under `dir` (quietly); `extra` adds flags to `moec run`. */
export async function trainPattern(dir: string, o: { steps?: number; moe?: string; extra?: string[] } = {}): Promise<PatternRun> {
  mkdirSync(dir, { recursive: true });
  process.env.MOEC_CACHE = path.join(dir, 'cache');
  // Paragraphs of the pattern at every offset, so each window sees it from every phase.
  const paras = Array.from({ length: 40 }, (_, i) => (PATTERN.repeat(8)).slice(i % PATTERN.length, (i % PATTERN.length) + 60));
  writeFileSync(path.join(dir, 'pattern.txt'), paras.join('\n\n') + '\n');
  const file = path.join(dir, 'pattern.moe');
  writeFileSync(file, `data pattern {
  source text "pattern.txt"
  tokenizer bytes
  context 16
  valid 20%
}
model tiny {
  layers 1
  width 32
  heads 2
  ffn 64
  moe {
    ${o.moe ?? 'experts 2\n    top 1\n    capacity dropless'}
  }
}
train {
  steps ${o.steps ?? 120}
  batch 8
  lr 1e-2
  warmup 5
  seed 3
}
evaluate {
  every ${o.steps ?? 120}
  perplexity pattern.valid
}
`);
  const runs = path.join(dir, 'runs');
  const log = console.log;
  const err = process.stderr.write.bind(process.stderr);
  console.log = () => {};
  process.stderr.write = (() => true) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['run', file, '--out', runs, ...(o.extra ?? [])]);
  } finally {
    console.log = log;
    process.stderr.write = err;
  }
  if (code !== 0) throw new Error(`moec run exited ${code}`);
  return { dir, runs, sweepDir: path.join(runs, 'pattern'), file };
}
