import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/...). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const pipelinesDir = path.join(repoRoot, 'pipelines');
export const invalidDir = path.join(repoRoot, 'test/fixtures/invalid');

export function pipelineFiles(): string[] {
  return readdirSync(pipelinesDir).filter((f) => f.endsWith('.moe')).sort().map((f) => path.join(pipelinesDir, f));
}

/** Runs a command's `run`, collecting what it prints to stdout and stderr, and its exit code. */
export async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const write = process.stdout.write.bind(process.stdout);
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  process.stdout.write = ((s: string) => { out.push(String(s)); return true; }) as typeof process.stdout.write;
  try {
    return { code: await fn(), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stdout.write = write;
  }
}

/** Calls `fn` with a temporary file `name` holding `text`, removed once `fn` (sync or async) has finished. */
export function withTempFile<T>(name: string, text: string, fn: (file: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-test-'));
  const file = path.join(dir, name);
  const remove = () => rmSync(dir, { recursive: true, force: true });
  writeFileSync(file, text);
  let r: T;
  try {
    r = fn(file);
  } catch (e) {
    remove();
    throw e;
  }
  if (r instanceof Promise) return r.finally(remove) as T;
  remove();
  return r;
}
