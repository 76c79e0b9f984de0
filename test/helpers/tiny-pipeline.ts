// A one-trial .moe file over a text corpus in `dir` (corpus.txt, written by the test), byte tokens:
// the small pipeline the compile and micro-batch tests vary one block of.
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface TinyPipeline {
  context?: number;
  layers?: number;
  width?: number;
  heads?: number;
  /** The lines of a `moe { ... }` block inside the model (none: a dense model). */
  moe?: string;
  /** The train block's lines. */
  train: string;
}

/** Writes `<dir>/<name>.moe` and returns its path. */
export function writeTinyPipeline(dir: string, name: string, o: TinyPipeline): string {
  const file = path.join(dir, `${name}.moe`);
  writeFileSync(file, `data d {
  source text "corpus.txt"
  tokenizer bytes
  context ${o.context ?? 64}
}
model m {
  layers ${o.layers ?? 2}
  width ${o.width ?? 64}
  heads ${o.heads ?? 4}
  ffn 4x${o.moe ? `\n  moe {\n${o.moe}\n  }` : ''}
}
train {
${o.train}
}
`);
  return file;
}
