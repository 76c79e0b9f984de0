// Results without a shared filesystem: the trial directory's records and its last checkpoint go
// into the job's return value; files over the limit stay on the worker and are named as such.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import type { TrialStore } from '../store/run-store.js';
import type { TransferredFile, TrialJobResult } from './job.js';

/** Default per-file limit: Redis keeps the return value in memory until the coordinator has it. */
export const DEFAULT_TRANSFER_LIMIT = 64 * 1024 * 1024;

/**
 * The trial's records (config, plan, status, metrics, expert statistics, resumes, artifacts) and
 * its newest checkpoint; older checkpoints and temp files stay behind.
 */
export function collectTrialFiles(ts: TrialStore, limit: number, host: string): Pick<TrialJobResult, 'files' | 'notTransferred'> {
  const files: TransferredFile[] = [];
  const notTransferred: TrialJobResult['notTransferred'] = [];
  const take = (rel: string) => {
    const abs = path.join(ts.dir, rel);
    const bytes = statSync(abs).size;
    if (bytes > limit) notTransferred.push({ path: rel, bytes, where: `${host}:${abs}` });
    else files.push({ path: rel.split(path.sep).join('/'), base64: readFileSync(abs).toString('base64') });
  };
  for (const name of readdirSync(ts.dir).sort()) {
    if (name.startsWith('.')) continue;
    if (statSync(path.join(ts.dir, name)).isFile()) take(name);
  }
  const last = ts.latestCheckpoint();
  if (last) take(path.relative(ts.dir, last.path));
  return { files, notTransferred };
}

/** Writes carried files into the coordinator's trial directory, each atomically; refuses paths that leave it. */
export function writeTrialFiles(trialDir: string, files: TransferredFile[]): void {
  for (const f of files) {
    const parts = f.path.split('/');
    if (!f.path || parts.some((p) => p === '' || p === '.' || p === '..') || path.isAbsolute(f.path)) throw new Error(`queue: a worker sent a file outside the trial directory: '${f.path}'`);
    const abs = path.join(trialDir, ...parts);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileAtomic(abs, Buffer.from(f.base64, 'base64'));
  }
}

/** True when `dir` has a status.json that says done. */
export function trialDone(dir: string): boolean {
  const file = path.join(dir, 'status.json');
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { state?: string }).state === 'done';
  } catch {
    return false;
  }
}
