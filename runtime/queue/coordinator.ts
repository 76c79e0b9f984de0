// `moec run FILE --queue URL`: enqueues the sweep's unfinished trials (job id = sweep key + trial id,
// so enqueueing again never duplicates) and follows them to the end through the queue's events,
// feeding the same live view as a local run, keeping the run store and writing the report.
import path from 'node:path';
import { Queue, QueueEvents, type Job } from 'bullmq';
import type { LoadResult, Trial } from '../../compiler/frontend/index.js';
import { writeReport } from '../report/report.js';
import type { SweepResult } from '../run/sweep.js';
import { lockSweep, sweepName } from '../run/sweep.js';
import { trialInfo } from '../run/trial-runner.js';
import { RunStore } from '../store/run-store.js';
import type { SweepListener } from '../train/events.js';
import { asProgress, jobId, MOEC_VERSION, PLAN_SCHEMA_VERSION, QUEUE_NAME, QUEUE_PREFIX, type TrialJobData, type TrialJobResult } from './job.js';
import type { RedisTarget } from './redis-url.js';
import { queueRecord, sweepKey } from './sweep-key.js';
import { writeTrialFiles } from './transfer.js';

export interface QueueSweepOptions {
  file: string;
  load: LoadResult;
  trials: Trial[];
  out: string;
  target: RedisTarget;
  listener: SweepListener;
  /** A message for the view's static area (retries, refusals, where a trial runs). */
  message: (text: string) => void;
  /** Set to detach: the coordinator stops following; the workers go on. */
  detach: { requested: boolean };
  portable: boolean;
  steps: number | null;
  /** Tries per trial for crashes (user errors are never retried). */
  attempts: number;
  /** First retry delay (ms), doubled for each further one. */
  backoffMs: number;
  /** How often the coordinator reads every unfinished job back (events missed while Redis was away). */
  pollMs?: number;
}

export interface QueueSweepResult extends SweepResult {
  detached: boolean;
  dir: string;
}

type Final = 'done' | 'failed' | 'skipped';

export async function runQueueSweep(o: QueueSweepOptions): Promise<QueueSweepResult> {
  const preset = o.load.pipeline?.preset ?? null;
  const name = sweepName(o.file, preset);
  const dir = path.resolve(o.out, name);
  // One follower per run directory (a local moec run on it is refused too); a killed one's lock is taken over.
  const lock = lockSweep(dir);
  try {
    return await follow(o, name, dir, preset);
  } finally {
    lock.release();
  }
}

async function follow(o: QueueSweepOptions, name: string, dir: string, preset: string | null): Promise<QueueSweepResult> {
  const adapter = `queue ${o.target.display}`;
  const info = { sweep: name, file: path.resolve(o.file), preset, adapter, trials: o.trials.map((t) => ({ id: t.id, name: t.name })) };
  const store = RunStore.exists(dir) ? RunStore.open(dir) : RunStore.create(dir, info);
  store.syncTrials(info.trials, adapter);
  const rec = queueRecord(dir, o.target.display);
  const key = sweepKey(name, rec.token);
  const byJob = new Map(o.trials.map((t) => [jobId(key, t.id), t]));
  const final = new Map<string, Final>();
  const result: QueueSweepResult = { done: 0, failed: 0, stopped: 0, skipped: 0, reportPath: null, detached: false, dir };
  const connection = o.target.connection;
  const queue = new Queue<TrialJobData, TrialJobResult>(QUEUE_NAME, { connection, prefix: QUEUE_PREFIX });
  const events = new QueueEvents(QUEUE_NAME, { connection, prefix: QUEUE_PREFIX });
  queue.on('error', () => {}); // ioredis reconnects by itself; the poll below catches up afterwards
  events.on('error', () => {});
  let allFinal!: () => void;
  const finished = new Promise<void>((resolve) => (allFinal = resolve));
  const checkFinished = () => {
    if (final.size === o.trials.length) allFinal();
  };
  const running = new Set<string>();
  const lastRefusal = new Map<string, string>();

  const complete = (t: Trial, r: TrialJobResult) => {
    if (final.has(t.id)) return;
    const ts = store.trial(t.id);
    if (!r.shared) {
      writeTrialFiles(ts.dir, r.files);
      if (r.notTransferred.length) {
        ts.writeArtifact('not-transferred.json', r.notTransferred);
        o.message(`${t.name}: not sent through the queue (over the size limit), left on the worker: ${r.notTransferred.map((f) => `${f.where} (${f.bytes} bytes)`).join(', ')}`);
      }
    }
    store.setTrialStatus(t.id, r.status === 'done' ? 'done' : r.status);
    showStored(t.id);
    final.set(t.id, 'done');
    result.done++;
    o.listener({ type: 'trial-end', id: t.id, status: 'done', wallSeconds: r.wallSeconds });
    checkFinished();
  };
  const fail = (t: Trial, reason: string, attempts: number) => {
    if (final.has(t.id)) return;
    const ts = store.trial(t.id);
    const prior = ts.readStatus();
    if (prior?.state !== 'failed') {
      const now = new Date().toISOString();
      ts.writeStatus({ state: 'failed', step: prior?.step ?? 0, steps: t.config.train.steps, error: reason, started: prior?.started ?? now, finished: now, wall_s: prior?.wall_s ?? 0, tokens_per_s: prior?.tokens_per_s ?? 0, adapter: prior?.adapter ?? adapter });
    } else store.setTrialStatus(t.id, 'failed');
    final.set(t.id, 'failed');
    result.failed++;
    o.listener({ type: 'trial-end', id: t.id, status: 'failed', error: attempts > 1 ? `${reason} (after ${attempts} attempts)` : reason, wallSeconds: prior?.wall_s ?? 0 });
    checkFinished();
  };
  // A trial that finished while no coordinator followed it: its last step and evaluation, from the store.
  const showStored = (id: string) => {
    const metrics = store.trial(id).readMetrics();
    const train = metrics.filter((m) => m.kind === 'train').at(-1);
    const ev = metrics.filter((m) => m.kind === 'eval').at(-1);
    if (train && train.kind === 'train') o.listener({ type: 'step', id, step: train.step, loss: train.loss, lr: train.lr, tokensPerSec: train.tokens_per_s, elapsed: train.time_s });
    if (ev && ev.kind === 'eval') o.listener({ type: 'eval', id, step: ev.step, validLoss: ev.valid_loss, validPpl: ev.valid_ppl, ...(typeof ev.valid_acc === 'number' ? { validAcc: ev.valid_acc } : {}) });
  };
  /** Reads a job back and acts on its state: the one path for events, the poll and re-attaching. */
  const settle = async (t: Trial, job: Job<TrialJobData, TrialJobResult> | undefined) => {
    if (final.has(t.id) || !job) return;
    const state = await job.getState();
    if (state === 'completed') complete(t, job.returnvalue);
    else if (state === 'failed') fail(t, job.failedReason, job.attemptsMade);
  };

  events.on('progress', ({ jobId: id, data }) => {
    const t = byJob.get(id);
    const p = asProgress(data);
    if (!t || !p || final.has(t.id)) return;
    if (p.kind === 'refused') {
      if (lastRefusal.get(t.id) !== p.reason) o.message(`${t.name}: refused by ${p.at.host}: ${p.reason}`);
      lastRefusal.set(t.id, p.reason);
      return;
    }
    const e = p.event;
    if (e.type === 'trial-start') {
      running.add(t.id);
      store.setTrialStatus(t.id, 'running');
      o.listener({ ...e, note: [`on ${p.at.host} (${p.at.adapter})${p.attempt > 1 ? `, attempt ${p.attempt}` : ''}`, e.note].filter(Boolean).join('; ') });
    } else if (e.type === 'step' || e.type === 'eval' || e.type === 'checkpoint') {
      if (e.id === t.id) o.listener(e);
    }
  });
  const settleById = (id: string) => {
    const t = byJob.get(id);
    if (t) void queue.getJob(id).then((job) => settle(t, job)).catch(() => {});
  };
  events.on('completed', ({ jobId: id }) => settleById(id));
  events.on('failed', ({ jobId: id }) => settleById(id));
  // A failed attempt with attempts left goes to 'delayed' (the backoff), not 'failed'. So do a
  // refusal and a worker's stop, but those leave attemptsMade as it was.
  const attemptsSeen = new Map<string, number>();
  const onRetry = (id: string) => {
    const t = byJob.get(id);
    if (!t) return;
    void queue.getJob(id).then((job) => {
      if (!job || final.has(t.id) || job.attemptsMade <= (attemptsSeen.get(t.id) ?? 0) || !job.failedReason) return;
      attemptsSeen.set(t.id, job.attemptsMade);
      o.message(`${t.name}: attempt ${job.attemptsMade} of ${o.attempts} failed: ${job.failedReason}; retried after a backoff`);
    }).catch(() => {});
  };
  events.on('delayed', ({ jobId: id }) => onRetry(id));
  events.on('waiting', ({ jobId: id }) => onRetry(id));
  events.on('stalled', ({ jobId: id }) => {
    const t = byJob.get(id);
    if (t && !final.has(t.id)) o.message(`${t.name}: its worker stopped answering; the trial is back in the queue and resumes from its last checkpoint`);
  });
  await events.waitUntilReady();

  o.listener({ type: 'sweep-start', sweep: name, adapter, out: dir, trials: o.trials.map(trialInfo) });
  const sources = Object.fromEntries(o.load.sources);
  let added = 0;
  for (const t of o.trials) {
    const ts = store.trial(t.id);
    const st = ts.readStatus();
    if (st?.state === 'done' && st.step >= t.config.train.steps) {
      store.setTrialStatus(t.id, 'done');
      final.set(t.id, 'skipped');
      result.skipped++;
      o.listener({ type: 'trial-end', id: t.id, status: 'skipped', wallSeconds: 0 });
      continue;
    }
    const id = jobId(key, t.id);
    const job = await queue.getJob(id);
    if (job) {
      const state = await job.getState();
      // Running the command again retries trials that failed; the others are re-attached as they are.
      if (state === 'failed') await job.retry('failed');
      else await settle(t, job);
      continue;
    }
    const data: TrialJobData = {
      moec: MOEC_VERSION, planSchema: PLAN_SCHEMA_VERSION,
      sweep: { name, key, dir, token: rec.token },
      trial: { id: t.id, name: t.name },
      pipeline: { file: o.file, sources, preset, steps: o.steps },
      portable: o.portable,
    };
    // An id already in the queue (another terminal, a moment ago) is left as it is.
    await queue.add(t.name, data, { jobId: id, attempts: o.attempts, backoff: { type: 'exponential', delay: o.backoffMs }, removeOnComplete: false, removeOnFail: false });
    added++;
  }
  o.message(`${added} trial${added === 1 ? '' : 's'} enqueued on ${o.target.display}, ${o.trials.length - added - result.skipped} already in the queue, ${result.skipped} done before; start workers with: moec worker --queue ${o.target.display}`);
  checkFinished();

  // Events missed while Redis was away (or before we attached) are caught up by reading the jobs back.
  let polling = false;
  const poll = setInterval(() => {
    if (polling) return;
    polling = true;
    void (async () => {
      for (const [id, t] of byJob) if (!final.has(t.id)) await settle(t, await queue.getJob(id));
    })().catch(() => {}).finally(() => { polling = false; });
  }, o.pollMs ?? 2000);
  const detachPoll = setInterval(() => o.detach.requested && allFinal(), 100);
  try {
    await finished;
  } finally {
    clearInterval(poll);
    clearInterval(detachPoll);
    await Promise.allSettled([events.close(), queue.close()]);
  }
  if (final.size < o.trials.length) {
    result.detached = true;
    return result;
  }
  try {
    result.reportPath = (await writeReport(dir)).files.markdown;
  } catch (e) {
    result.reportError = `${(e as Error).message}; the runs are intact: retry with 'moec report ${dir}'`;
  }
  o.listener({ type: 'sweep-end', out: dir });
  return result;
}
