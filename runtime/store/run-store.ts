// The run store: one directory per sweep, one per trial, every file written atomically.
//   <dir>/index.json                      the sweep and its trials with their status
//   <dir>/<trial>/config.json             the trial and its resolved configuration
//   <dir>/<trial>/plan.json               the compiler's plan summary
//   <dir>/<trial>/metrics.jsonl           train and eval metrics, appended
//   <dir>/<trial>/experts.jsonl           expert assignment by label, per evaluation
//   <dir>/<trial>/status.json             running | done | failed | stopped
//   <dir>/<trial>/checkpoints/step-N.safetensors   the last K checkpoints
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { canonicalJson, trialId } from '../../compiler/frontend/sweep.js';
import { UserError } from '../../grammar/user-error.js';
import type { TrialStatus } from '../train/events.js';
import type { Comparison } from '../../compiler/frontend/types.js';
import { writeJsonAtomic } from './atomic.js';
import { trialConfigDiff } from './config-diff.js';
import { JsonlLog } from './jsonl.js';
import { withLock } from './lock.js';
import { CheckpointDamaged, checkpointSums, readVerifiedCheckpoint } from './checkpoint-sum.js';
import { writeSafetensors, type LoadedTensor, type TensorData } from './safetensors.js';
import type { CheckpointRef, CheckpointState, ExpertRecord, Metric, ResumeRecord, StatusRecord, SweepIndex, SweepInfo, TrialRecord } from './types.js';

export * from './types.js';

export interface StoreOptions {
  /** Checkpoints kept per trial (the newest); default 2. */
  keep?: number;
}

const INDEX = 'index.json';
const INDEX_LOCK = '.index.lock';
/** Names in a sweep directory that do not make it a run: temp files of atomic writes, and lock files. */
const HOUSEKEEPING = /^\.(.*\.tmp-\d+|(index\.)?lock(\..*)?)$/;
const CKPT = /^step-(\d+)\.safetensors$/;

export function readJsonFile<T>(file: string): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new UserError(code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`, { where: file });
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new UserError('not valid JSON', { where: file, hint: 'the file was edited or damaged by hand; moec writes it atomically' });
  }
}

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

  /** The sweep's `compare` lines as the pipeline now has them: they change no trial, so a resume takes the new ones. */
  setComparisons(comparisons: Comparison[]): void {
    this.updateIndex(() => {
      if (comparisons.length) this.idx.comparisons = comparisons;
      else delete this.idx.comparisons;
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

export interface LoadedCheckpoint {
  step: number;
  path: string;
  tensors: Map<string, LoadedTensor>;
  state: CheckpointState;
}

export class TrialStore {
  private readonly metrics: JsonlLog<Metric>;
  private readonly experts: JsonlLog<ExpertRecord>;
  private readonly resumes: JsonlLog<ResumeRecord>;

  constructor(private readonly store: RunStore, readonly dir: string, readonly id: string, private readonly keep: number) {
    this.metrics = new JsonlLog(path.join(dir, 'metrics.jsonl'));
    this.experts = new JsonlLog(path.join(dir, 'experts.jsonl'));
    this.resumes = new JsonlLog(path.join(dir, 'resumes.jsonl'));
  }

  get checkpointDir(): string {
    return path.join(this.dir, 'checkpoints');
  }

  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true });
  }

  /** The trial's config. Writing it again is allowed only with the same content (a resumed trial). */
  writeConfig(trial: TrialRecord, opts: { replace?: boolean } = {}): void {
    if (trial.id !== this.id) throw new Error(`run store: config for '${trial.id}' written to trial '${this.id}'`);
    this.ensureDir();
    const file = path.join(this.dir, 'config.json');
    const rec: TrialRecord = { id: trial.id, name: trial.name, params: trial.params, seed: trial.seed, baseline: trial.baseline, matches: trial.matches ?? null, params_count: trial.params_count, config: trial.config };
    if (existsSync(file) && !opts.replace) {
      const stored = readJsonFile<TrialRecord>(file);
      if (canonicalJson(stored) === canonicalJson(rec)) return;
      // Written by an older moec: the same settings, less the keys added since at their defaults.
      if (stored.id !== rec.id && trialId(stored.config) === rec.id) {
        writeJsonAtomic(file, rec);
        return;
      }
      throw new UserError(`trial ${this.id} was run with a different configuration: ${trialConfigDiff(stored.config, rec.config).join(', ')}`, { where: file, kind: 'trial', hint: `resume with the settings it was run with, or run it again from scratch: --only ${this.id} --force` });
    }
    writeJsonAtomic(file, rec);
  }

  readConfig(): TrialRecord | null {
    const file = path.join(this.dir, 'config.json');
    return existsSync(file) ? readJsonFile<TrialRecord>(file) : null;
  }

  /** Whatever plan summary the compiler gives (plain JSON). */
  writePlan(summary: unknown): void {
    this.ensureDir();
    writeJsonAtomic(path.join(this.dir, 'plan.json'), summary);
  }

  /** A JSON artifact beside the trial's records (e.g. top-tokens.json), replaced atomically. */
  writeArtifact(name: string, value: unknown): void {
    this.ensureDir();
    writeJsonAtomic(path.join(this.dir, name), value);
  }

  readArtifact(name: string): unknown {
    const file = path.join(this.dir, name);
    return existsSync(file) ? readJsonFile(file) : null;
  }

  readPlan(): unknown {
    const file = path.join(this.dir, 'plan.json');
    return existsSync(file) ? readJsonFile<unknown>(file) : null;
  }

  appendMetric(m: Metric): void {
    this.ensureDir();
    this.metrics.append(m);
  }

  readMetrics(): Metric[] {
    return this.metrics.read();
  }

  appendExperts(r: ExpertRecord): void {
    this.ensureDir();
    this.experts.append(r);
  }

  readExperts(): ExpertRecord[] {
    return this.experts.read();
  }

  /** A resume that ran on other kernels than the checkpoint it continued (resumes.jsonl). */
  appendResume(r: ResumeRecord): void {
    this.ensureDir();
    this.resumes.append(r);
  }

  readResumes(): ResumeRecord[] {
    return this.resumes.read();
  }

  /** Write status.json and mirror the state into the sweep index. */
  writeStatus(s: StatusRecord): void {
    this.ensureDir();
    writeJsonAtomic(path.join(this.dir, 'status.json'), s);
    this.store.setTrialStatus(this.id, s.state);
  }

  readStatus(): StatusRecord | null {
    const file = path.join(this.dir, 'status.json');
    return existsSync(file) ? readJsonFile<StatusRecord>(file) : null;
  }

  /**
   * Save the weights and training state after `step` optimizer steps. The file appears only once
   * complete; older checkpoints beyond the newest `keep` are deleted afterwards.
   */
  saveCheckpoint(step: number, tensors: Record<string, TensorData> | Map<string, TensorData>, state: CheckpointState = {}): CheckpointRef {
    if (!Number.isInteger(step) || step < 0) throw new Error(`run store: checkpoint step must be a whole number, got ${step}`);
    mkdirSync(this.checkpointDir, { recursive: true });
    const file = path.join(this.checkpointDir, `step-${step}.safetensors`);
    const meta = { format: 'moec', step: String(step), state: JSON.stringify(state) };
    const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))];
    writeSafetensors(file, tensors, { ...meta, ...checkpointSums(entries, meta) });
    this.prune();
    return { step, path: file, bytes: statSync(file).size };
  }

  /** Where the step-0 weights go (`moec run --save-init`): beside the checkpoints, never pruned or resumed from. */
  get initialPath(): string {
    return path.join(this.dir, 'initial.safetensors');
  }

  /** The initial weights (no optimiser state), written once. */
  saveInitial(tensors: Map<string, TensorData>, state: CheckpointState): CheckpointRef {
    this.ensureDir();
    writeSafetensors(this.initialPath, tensors, { format: 'moec', step: '0', state: JSON.stringify(state) });
    return { step: 0, path: this.initialPath, bytes: statSync(this.initialPath).size };
  }

  /** Delete all but the newest `keep` checkpoints. */
  private prune(): void {
    for (const old of this.checkpoints().slice(0, -this.keep)) rmSync(old.path, { force: true });
  }

  /** Complete checkpoints, oldest first (temp files of an interrupted save are not listed). */
  checkpoints(): CheckpointRef[] {
    if (!existsSync(this.checkpointDir)) return [];
    const out: CheckpointRef[] = [];
    for (const name of readdirSync(this.checkpointDir)) {
      const m = CKPT.exec(name);
      if (!m) continue;
      const p = path.join(this.checkpointDir, name);
      out.push({ step: Number(m[1]), path: p, bytes: statSync(p).size });
    }
    return out.sort((a, b) => a.step - b.step);
  }

  latestCheckpoint(): CheckpointRef | null {
    return this.checkpoints().at(-1) ?? null;
  }

  /** Load and verify a checkpoint (checksums, step); a CheckpointDamaged error says what is wrong. */
  loadCheckpoint(ref: CheckpointRef): LoadedCheckpoint {
    const f = readVerifiedCheckpoint(ref.path, ref.step);
    let state: CheckpointState = {};
    try {
      state = JSON.parse(f.metadata.state ?? '{}') as CheckpointState;
    } catch {
      throw new CheckpointDamaged(ref.path, 'its metadata "state" is not valid JSON');
    }
    if (state.step !== undefined && state.step !== ref.step) throw new CheckpointDamaged(ref.path, `its training state says step ${JSON.stringify(state.step)} but it is named for step ${ref.step}`);
    return { step: ref.step, path: ref.path, tensors: f.tensors, state };
  }

  /**
   * Prepare to continue the trial: load its newest sound checkpoint (null: start from step 0), drop
   * the metrics and expert records logged after it so no step appears twice, and tidy up after a
   * killed save (its temp file; an old checkpoint it had not yet pruned). A damaged checkpoint is
   * renamed to NAME.damaged (kept for a look, never loaded again) and the previous one is used,
   * which `fellBack` says; when every checkpoint is damaged the trial fails naming them.
   */
  resume(): (LoadedCheckpoint & { fellBack?: string }) | null {
    if (existsSync(this.checkpointDir)) {
      for (const name of readdirSync(this.checkpointDir)) if (name.startsWith('.') && name.includes('.tmp-')) rmSync(path.join(this.checkpointDir, name), { force: true });
      this.prune();
    }
    const refs = this.checkpoints();
    const damaged: string[] = [];
    let ck: LoadedCheckpoint | null = null;
    for (const ref of [...refs].reverse()) {
      try {
        ck = this.loadCheckpoint(ref);
        break;
      } catch (e) {
        if (!(e instanceof CheckpointDamaged)) throw e;
        damaged.push(`${ref.path} (${e.reason})`);
        renameSync(ref.path, `${ref.path}.damaged`);
      }
    }
    if (damaged.length && !ck) {
      // One trial's state: the sweep records it as this trial's failure and goes on.
      throw new UserError(`trial ${this.id}: every checkpoint is damaged: ${damaged.join('; ')}; they are kept as .damaged files; run the trial again from scratch with --only ${this.id} --force`, { kind: 'trial' });
    }
    const upTo = ck?.step ?? 0;
    this.metrics.retain((m) => m.step <= upTo);
    this.experts.retain((r) => r.step <= upTo);
    this.resumes.retain((r) => r.step <= upTo);
    if (!ck) return null;
    return damaged.length ? { ...ck, fellBack: `damaged checkpoint ${damaged.join('; ')}: moved aside as .damaged; resuming from the previous one, ${path.basename(ck.path)}` } : ck;
  }
}
