// The run store: one directory per sweep, one per trial, every file written atomically.
//   <dir>/index.json                      the sweep and its trials with their status
//   <dir>/<trial>/config.json             the trial and its resolved configuration
//   <dir>/<trial>/plan.json               the compiler's plan summary
//   <dir>/<trial>/metrics.jsonl           train and eval metrics, appended
//   <dir>/<trial>/experts.jsonl           expert assignment by label, per evaluation
//   <dir>/<trial>/status.json             running | done | failed | stopped
//   <dir>/<trial>/checkpoints/step-N.safetensors   the last K checkpoints
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { trialId } from '../../compiler/frontend/sweep.js';
import { UserError } from '../../grammar/user-error.js';
import type { TrialStatus } from '../train/events.js';
import type { Comparison } from '../../compiler/frontend/types.js';
import { writeJsonAtomic } from './atomic.js';
import { withLock } from './lock.js';
import { readJsonFile } from './json-file.js';
import { TrialStore } from './trial-store.js';
import type { SweepIndex, SweepInfo, TrialRecord } from './types.js';

export * from './types.js';
export { readJsonFile } from './json-file.js';
export { type LoadedCheckpoint, TrialStore } from './trial-store.js';

export interface StoreOptions {
  /** Checkpoints kept per trial (the newest); default 2. */
  keep?: number;
}

const INDEX = 'index.json';
const INDEX_LOCK = '.index.lock';
/** Names in a sweep directory that do not make it a run: temp files of atomic writes, and lock files. */
const HOUSEKEEPING = /^\.(.*\.tmp-\d+|(index\.)?lock(\..*)?)$/;


function checkId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.=,-]*$/.test(id) || id.includes('..')) throw new Error(`run store: '${id}' is not a valid trial id`);
}

export class RunStore {
  private constructor(readonly dir: string, private idx: SweepIndex, private readonly keep: number) {}

  /** True when `dir` already holds a run (an index.json). */
  static exists(dir: string): boolean {
    return existsSync(path.join(dir, INDEX));
  }

  /**
   * Start a new run in `dir`. An existing run is refused (continue it with --resume; --force reruns
   * chosen trials through resetTrial); a non-empty directory that is not a run is refused too, so a
   * mistyped --out cannot write into it.
   */
  static create(dir: string, info: SweepInfo, opts: StoreOptions = {}): RunStore {
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory()) throw new UserError('exists and is not a directory', { where: dir, hint: 'choose another output directory with --out' });
      // Temp files of a create killed before its first index write, and locks, do not make a directory a run.
      const entries = readdirSync(dir).filter((n) => !HOUSEKEEPING.test(n));
      if (entries.length) {
        if (!RunStore.exists(dir)) {
          throw new UserError('the directory is not empty and holds no moec run; refusing to write into it', { where: dir, hint: 'choose another output directory with --out' });
        }
        throw new UserError('a run already exists here', { where: dir, hint: 'pass --resume to continue it, or --force to run its trials again from scratch' });
      }
    }
    mkdirSync(dir, { recursive: true });
    const now = new Date().toISOString();
    for (const t of info.trials) checkId(t.id);
    const idx: SweepIndex = {
      version: 1, sweep: info.sweep, file: info.file, preset: info.preset, adapter: info.adapter, created: now, updated: now,
      trials: info.trials.map((t) => ({ id: t.id, name: t.name, status: 'pending' })),
      ...(info.comparisons?.length ? { comparisons: info.comparisons } : {}),
      ...(info.zips?.length ? { zips: info.zips } : {}),
    };
    const store = new RunStore(dir, idx, opts.keep ?? 2);
    store.saveIndex();
    return store;
  }

  /** Open an existing run (to resume it, list it or report on it). */
  static open(dir: string, opts: StoreOptions = {}): RunStore {
    if (!RunStore.exists(dir)) {
      throw new UserError(existsSync(dir) ? 'not a moec run: no index.json' : 'no such run directory', { where: dir, hint: "runs are written by 'moec run' under runs/<sweep>; 'moec ls' lists them" });
    }
    const idx = readJsonFile<SweepIndex>(path.join(dir, INDEX));
    if (idx.version !== 1 || !Array.isArray(idx.trials)) throw new UserError(`unsupported index version ${JSON.stringify(idx.version)}`, { where: path.join(dir, INDEX) });
    return new RunStore(dir, idx, opts.keep ?? 2);
  }

  get index(): Readonly<SweepIndex> {
    return this.idx;
  }

  /**
   * On resume: add trials the index lacks (as pending), keep the others and their status; update the
   * adapter. A trial stored under an id an older moec derived (ids hash the configuration, and the
   * scheme has changed as the language grew) is found by hashing its config.json the current way, and
   * moved to its current id, so its steps are resumed instead of run again beside it.
   */
  syncTrials(trials: { id: string; name: string }[], adapter?: string): void {
    this.updateIndex(() => this.syncTrialsLocked(trials, adapter));
  }

  private syncTrialsLocked(trials: { id: string; name: string }[], adapter?: string): void {
    const current = new Set(trials.map((t) => t.id));
    // Stored trials this sweep does not name, by the id their config.json hashes to now (read once).
    const byStoredId = new Map<string, SweepIndex['trials'][number]>();
    for (const x of this.idx.trials) {
      const id = current.has(x.id) ? undefined : this.storedId(x.id);
      if (id && !byStoredId.has(id)) byStoredId.set(id, x);
    }
    for (const t of trials) {
      checkId(t.id);
      if (this.idx.trials.some((x) => x.id === t.id)) continue;
      const old = byStoredId.get(t.id);
      if (old) {
        renameSync(path.join(this.dir, old.id), path.join(this.dir, t.id));
        const file = path.join(this.dir, t.id, 'config.json');
        writeJsonAtomic(file, { ...readJsonFile<TrialRecord>(file), id: t.id });
        Object.assign(old, { id: t.id, name: t.name });
      } else {
        this.idx.trials.push({ id: t.id, name: t.name, status: 'pending' });
      }
    }
    if (adapter) this.idx.adapter = adapter;
  }

  /** The current id of a stored trial's configuration (undefined without a readable config.json). */
  private storedId(id: string): string | undefined {
    const file = path.join(this.dir, id, 'config.json');
    try {
      return existsSync(file) ? trialId(readJsonFile<TrialRecord>(file).config) : undefined;
    } catch {
      return undefined; // unreadable: left alone, as a trial of its own
    }
  }

  /**
   * The sweep's `compare` lines and zip blocks as the pipeline now has them: they change no trial
   * (only how the report groups them), so a resume takes the new ones.
   */
  setAnalysis(a: { comparisons: Comparison[]; zips?: string[][] }): void {
    this.updateIndex(() => {
      if (a.comparisons.length) this.idx.comparisons = a.comparisons;
      else delete this.idx.comparisons;
      if (a.zips?.length) this.idx.zips = a.zips;
      else delete this.idx.zips;
    });
  }

  setTrialStatus(id: string, status: TrialStatus): void {
    if (!this.idx.trials.some((x) => x.id === id)) throw new Error(`run store: trial '${id}' is not in ${path.join(this.dir, INDEX)}`);
    this.updateIndex(() => {
      const t = this.idx.trials.find((x) => x.id === id);
      if (!t) throw new Error(`run store: trial '${id}' is not in ${path.join(this.dir, INDEX)}`);
      t.status = status;
    });
  }

  /**
   * Forget a trial's records so it runs again from scratch (--force): everything in its directory
   * but its lock (the caller holds it) is removed, and it is pending again. Returns the trial's
   * directory if anything was removed.
   */
  resetTrial(id: string): string | null {
    if (!this.idx.trials.some((x) => x.id === id)) throw new Error(`run store: trial '${id}' is not in ${path.join(this.dir, INDEX)}`);
    const dir = path.join(this.dir, id);
    const entries = existsSync(dir) ? readdirSync(dir).filter((n) => n !== '.lock') : [];
    for (const n of entries) rmSync(path.join(dir, n), { recursive: true, force: true });
    this.setTrialStatus(id, 'pending');
    return entries.length ? dir : null;
  }

  trial(id: string): TrialStore {
    if (!this.idx.trials.some((x) => x.id === id)) throw new Error(`run store: trial '${id}' is not in ${path.join(this.dir, INDEX)}`);
    return new TrialStore(this, path.join(this.dir, id), id, this.keep);
  }

  trials(): TrialStore[] {
    return this.idx.trials.map((t) => this.trial(t.id));
  }

  /**
   * Read-modify-write of index.json under a short-held lock, on the file's current content: several
   * processes (queue workers, array tasks) may update different trials of one sweep at once.
   */
  private updateIndex(mutate: () => void): void {
    withLock(path.join(this.dir, INDEX_LOCK), 'update index.json', () => {
      const file = path.join(this.dir, INDEX);
      if (existsSync(file)) this.idx = readJsonFile<SweepIndex>(file);
      mutate();
      this.saveIndex();
    });
  }

  private saveIndex(): void {
    this.idx.updated = new Date().toISOString();
    writeJsonAtomic(path.join(this.dir, INDEX), this.idx);
  }
}
