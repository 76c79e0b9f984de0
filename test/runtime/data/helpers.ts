import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSet, SourceKind } from '../../../compiler/frontend/types.js';

/** A resolved DataSet as the front end would produce it, with overrides. */
export function dataSet(kind: SourceKind, over: Partial<DataSet> & { path?: string | null; languages?: string[] } = {}): DataSet {
  const { path = null, languages = [], ...rest } = over;
  return {
    name: 'd', source: { kind, languages, path }, tokenizer: 'bytes', context: 16, valid: 0.2, limit: 0, text: 'text', label: null,
    labels: [], vocab: 256,
    synthetic: { clusters: 4, patches: 4, dim: 16, noise: 0.1, feature: [0.5, 2], distractor: [0.5, 2], samples: 200 },
    ...rest,
  };
}

/** A fresh temporary folder, and MOEC_CACHE pointed into it for the duration of a test. */
export function tempCache(): { dir: string; cache: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'moec-data-test-'));
  const before = process.env.MOEC_CACHE;
  process.env.MOEC_CACHE = join(dir, 'cache');
  return {
    dir, cache: join(dir, 'cache'),
    done: () => {
      if (before === undefined) delete process.env.MOEC_CACHE;
      else process.env.MOEC_CACHE = before;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Assert that `fn` rejects with a UserError whose formatted text matches every pattern. */
export async function rejectsUser(fn: () => Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  try {
    await fn();
  } catch (e) {
    const err = e as { name?: string; format?: () => string };
    if (err.name !== 'UserError' || !err.format) throw e;
    const text = err.format();
    for (const p of patterns) if (!p.test(text)) throw new Error(`error text ${JSON.stringify(text)} does not match ${p}`);
    return text;
  }
  throw new Error('expected a UserError, but nothing was thrown');
}
