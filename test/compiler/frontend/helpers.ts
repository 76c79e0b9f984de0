import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/...). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const pipelinesDir = path.join(repoRoot, 'pipelines');
export const invalidDir = path.join(repoRoot, 'test/fixtures/invalid');

export function pipelineFiles(): string[] {
  return readdirSync(pipelinesDir).filter((f) => f.endsWith('.moe')).sort().map((f) => path.join(pipelinesDir, f));
}
