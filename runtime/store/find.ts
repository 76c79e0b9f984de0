// Finding runs and trials on disk for `moec ls`, `moec show` and `moec report`.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../grammar/user-error.js';
import { RunStore } from './run-store.js';

export const DEFAULT_RUNS = 'runs';

/** The run directories at `root`: `root` itself if it is one, else its sub-directories that are (sorted by name). */
export function listRuns(root: string): string[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new UserError('no such runs directory', { where: root, hint: "'moec run FILE' writes its runs under runs/; name another directory if yours are elsewhere" });
  }
  if (RunStore.exists(root)) return [root];
  return readdirSync(root).sort().map((n) => path.join(root, n)).filter((d) => RunStore.exists(d));
}

/** Open `dir` as a run, or say which runs it holds. */
export function openRunDir(dir: string): RunStore {
  if (!RunStore.exists(dir) && existsSync(dir) && statSync(dir).isDirectory()) {
    const inside = listRuns(dir);
    if (inside.length) throw new UserError(`not a run itself: it holds ${inside.length} run${inside.length === 1 ? '' : 's'}`, { where: dir, hint: `name one: ${inside.slice(0, 5).join(', ')}${inside.length > 5 ? ', ...' : ''}` });
  }
  return RunStore.open(dir);
}

export interface FoundTrial { store: RunStore; id: string; name: string }

/** A trial by id prefix (or exact name), searched in every run under `root`; `SWEEP/PREFIX` narrows to one sweep. */
export function findTrial(root: string, query: string): FoundTrial {
  let runs = listRuns(root);
  let q = query;
  const slash = query.lastIndexOf('/');
  if (slash > 0) {
    const sweep = query.slice(0, slash);
    q = query.slice(slash + 1);
    runs = runs.filter((d) => path.basename(d) === sweep || d === sweep);
  }
  const matches: FoundTrial[] = [];
  for (const dir of runs) {
    const store = RunStore.open(dir);
    for (const t of store.index.trials) if (t.id.startsWith(q) || t.name === q) matches.push({ store, id: t.id, name: t.name });
  }
  if (matches.length === 1) return matches[0]!;
  if (!matches.length) {
    throw new UserError(`no trial '${query}' under ${root}`, { where: root, hint: "'moec ls' lists the trials with their ids; pass --runs DIR if the runs are elsewhere" });
  }
  const list = matches.slice(0, 8).map((m) => `${path.basename(m.store.dir)}/${m.id} (${m.name})`).join(', ');
  throw new UserError(`'${query}' matches ${matches.length} trials: ${list}${matches.length > 8 ? ', ...' : ''}`, { hint: 'give more characters of the id, or SWEEP/ID' });
}
