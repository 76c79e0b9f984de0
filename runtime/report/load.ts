// Read a whole run directory into memory for reports, `moec ls` and `moec show`.
import type { TrialStatus } from '../train/events.js';
import { RunStore } from '../store/run-store.js';
import type { CheckpointRef, EvalMetric, ExpertRecord, Metric, ResumeRecord, StatusRecord, SweepIndex, TrialRecord } from '../store/types.js';

export interface TrialData {
  id: string;
  name: string;
  /** status.json's state when the trial started, else the index's (pending, skipped). */
  state: TrialStatus;
  record: TrialRecord | null;
  status: StatusRecord | null;
  metrics: Metric[];
  evals: EvalMetric[];
  experts: ExpertRecord[];
  checkpoints: CheckpointRef[];
  /** Resumes that ran on other kernels (adapter or lowering) than their checkpoint. */
  resumes: ResumeRecord[];
  dir: string;
}

export interface RunData {
  dir: string;
  index: SweepIndex;
  trials: TrialData[];
}

export function loadRun(dir: string): RunData {
  const store = RunStore.open(dir);
  const trials = store.index.trials.map((t): TrialData => {
    const ts = store.trial(t.id);
    const status = ts.readStatus();
    const metrics = ts.readMetrics();
    return {
      id: t.id, name: t.name, state: status?.state ?? t.status, record: ts.readConfig(), status, metrics,
      evals: metrics.filter((m): m is EvalMetric => m.kind === 'eval'),
      experts: ts.readExperts(), checkpoints: ts.checkpoints(), resumes: ts.readResumes(), dir: ts.dir,
    };
  });
  return { dir, index: store.index, trials };
}
