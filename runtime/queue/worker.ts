// `moec worker`: takes trial jobs from the queue, trains each in a child process (trial-child.ts)
// and turns what the child reports into job progress, a return value, a retry or a refusal.
import { fork, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { SweepEvent } from '../train/events.js';
import { MOEC_VERSION, PLAN_SCHEMA_VERSION, QUEUE_NAME, QUEUE_PREFIX, type TrialJobData, type TrialJobResult, type TrialProgress, type WorkerPlace } from './job.js';
import type { ChildTask, FromChild, ToChild } from './trial-child.js';
import type { RedisTarget } from './redis-url.js';

export interface WorkerOptions {
  target: RedisTarget;
  adapter?: string;
  concurrency: number;
  out: string;
  transfer: boolean;
  transferLimit: number;
  /** BullMQ's job lock (ms): a worker silent this long is presumed dead and its trial put back. */
  lockMs: number;
  log: (line: string) => void;
  /** Set to stop: running trials checkpoint and go back to the queue. */
  stop: { requested: boolean };
}

/** How long a refused or interrupted job waits before a worker may take it again. */
const REQUEUE_DELAY_MS = 2000;
/** Step events are sent at most this often per trial; every other event at once. */
const STEP_PROGRESS_MS = 250;

const childScript = fileURLToPath(new URL('./trial-child.js', import.meta.url));

/** Why this worker will not train `data`, or null when it will. */
export function refusal(data: TrialJobData): string | null {
  if (data.moec !== MOEC_VERSION || data.planSchema !== PLAN_SCHEMA_VERSION) {
    return `compiled by moec ${data.moec} (plan schema ${data.planSchema}); this worker is moec ${MOEC_VERSION} (plan schema ${PLAN_SCHEMA_VERSION}); it goes back to the queue for a worker of that version`;
  }
  return null;
}

export async function runWorker(o: WorkerOptions): Promise<void> {
  const host = hostname();
  const children = new Set<ChildProcess>();
  const processor = async (job: Job<TrialJobData, TrialJobResult>, token?: string): Promise<TrialJobResult> => {
    const data = job.data;
    const why = refusal(data);
    const requeue = async (reason: string) => {
      await job.updateProgress({ kind: 'refused', at: { host, adapter: o.adapter ?? 'any' }, reason } satisfies TrialProgress);
      await job.moveToDelayed(Date.now() + REQUEUE_DELAY_MS, token);
      throw new DelayedError(reason);
    };
    if (why) {
      o.log(`refusing trial ${data.trial.id}: ${why}`);
      return requeue(why);
    }
    if (o.stop.requested) return requeue('the worker is stopping');
    o.log(`trial ${data.trial.id} (${data.trial.name}) of ${data.sweep.name}: attempt ${job.attemptsMade + 1}`);
    const outcome = await trainInChild(job, { data, ...(o.adapter ? { adapter: o.adapter } : {}), out: o.out, transfer: o.transfer, transferLimit: o.transferLimit }, host, children);
    if (outcome.kind === 'busy') {
      o.log(`trial ${data.trial.id}: ${outcome.message}`);
      return requeue(outcome.message);
    }
    if (outcome.kind === 'user-error') {
      o.log(`trial ${data.trial.id} failed (not retried): ${outcome.message}`);
      throw new UnrecoverableError(outcome.message);
    }
    const r = outcome.result;
    // Stopped by this worker's Ctrl-C: the checkpoint is written; another worker (or this one, later) resumes it.
    if (r.status === 'stopped') return requeue(`stopped on ${host} after a checkpoint`);
    o.log(`trial ${data.trial.id}: ${r.status} in ${r.wallSeconds.toFixed(1)} s${r.shared ? '' : `, ${r.files.length} files sent through the queue${r.notTransferred.length ? `, ${r.notTransferred.length} left here (too large)` : ''}`}`);
    return r;
  };
  const worker = new Worker<TrialJobData, TrialJobResult>(QUEUE_NAME, processor, {
    connection: o.target.connection, prefix: QUEUE_PREFIX, concurrency: o.concurrency,
    lockDuration: o.lockMs, stalledInterval: o.lockMs, maxStalledCount: 3,
  });
  // While Redis is away every connection retries: say each different problem once, not every retry.
  let lastError = '';
  worker.on('error', (e) => {
    const text = e.message.replace(/job \S+/, 'job');
    // A lost connection is known by the socket error's code, not by the words of its message.
    const lost = /^(ECONN|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH)/.test(String((e as { code?: unknown }).code ?? ''));
    if (text !== lastError) o.log(`queue: ${e.message}${lost ? ' (reconnecting until Redis is back)' : ''}`);
    lastError = text;
  });
  worker.on('ready', () => {
    if (lastError) o.log(`queue: connected to ${o.target.display} again`);
    lastError = '';
  });
  await worker.waitUntilReady();
  o.log(`moec worker ${MOEC_VERSION} on ${host}: taking trials from ${o.target.display} (${o.concurrency} at a time)`);
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (!o.stop.requested) return;
      clearInterval(poll);
      for (const c of children) c.send({ kind: 'stop' } satisfies ToChild);
      resolve();
    }, 100);
  });
  await worker.close();
}

type ChildOutcome = { kind: 'result'; result: TrialJobResult } | { kind: 'user-error'; message: string } | { kind: 'busy'; message: string };

/** Forks the trial process and forwards its events as job progress; a crash rejects (and is retried). */
function trainInChild(job: Job<TrialJobData, TrialJobResult>, task: ChildTask, host: string, children: Set<ChildProcess>): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const child = fork(childScript, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    let outcome: ChildOutcome | undefined;
    let at: WorkerPlace = { host, adapter: task.adapter ?? 'default' };
    const attempt = job.attemptsMade + 1;
    // Progress goes out in order, one Redis write at a time; a step waits for the next slot.
    let chain = Promise.resolve();
    let pendingStep: SweepEvent | undefined;
    let stepTimer: NodeJS.Timeout | undefined;
    let lastStep = 0;
    const push = (event: SweepEvent) => {
      chain = chain.then(() => job.updateProgress({ kind: 'event', at, attempt, event } satisfies TrialProgress)).catch(() => {});
    };
    const flushStep = () => {
      if (stepTimer) clearTimeout(stepTimer);
      stepTimer = undefined;
      if (pendingStep) push(pendingStep);
      pendingStep = undefined;
      lastStep = Date.now();
    };
    child.on('message', (m: FromChild) => {
      if (m.kind === 'placed') at = { host, adapter: m.adapter };
      else if (m.kind === 'event') {
        if (m.event.type === 'step') {
          pendingStep = m.event;
          const wait = lastStep + STEP_PROGRESS_MS - Date.now();
          if (wait <= 0) flushStep();
          else stepTimer ??= setTimeout(flushStep, wait);
        } else {
          flushStep();
          push(m.event);
        }
      } else outcome = m;
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      flushStep();
      void chain.then(() => {
        if (outcome) resolve(outcome);
        else reject(new Error(`the trial process ended without a result (${signal ? `signal ${signal}` : `exit code ${code}`}) on ${host}`));
      });
    });
    child.send({ kind: 'train', task } satisfies ToChild);
  });
}
