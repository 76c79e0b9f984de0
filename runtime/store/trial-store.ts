// One trial's records in a run directory (see run-store.ts for the layout), every file written
// atomically; its status is mirrored into the sweep's index by the RunStore that opened it.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { canonicalJson, trialId } from '../../compiler/frontend/sweep.js';
import { UserError } from '../../grammar/user-error.js';
import type { TrialStatus } from '../train/events.js';
import { writeJsonAtomic } from './atomic.js';
import { CheckpointDamaged, checkpointSums, readVerifiedCheckpoint } from './checkpoint-sum.js';
import { trialConfigDiff } from './config-diff.js';
import { readJsonFile } from './json-file.js';
import { JsonlLog } from './jsonl.js';
import { writeSafetensors, type LoadedTensor, type TensorData } from './safetensors.js';
import type { CheckpointRef, CheckpointState, ExpertRecord, Metric, ResumeRecord, StatusRecord, TrialRecord } from './types.js';

const CKPT = /^step-(\d+)\.safetensors$/;

/** What a trial's store needs of its sweep's: mirroring a status into index.json. */
interface SweepIndexWriter {
  setTrialStatus(id: string, status: TrialStatus): void;
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

  constructor(private readonly store: SweepIndexWriter, readonly dir: string, readonly id: string, private readonly keep: number) {
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
