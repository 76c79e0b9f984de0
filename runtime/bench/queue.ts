// Benchmark: what the queue costs per trial. A redis-server of its own on a free port, the moec CLI
// as coordinator and workers (real processes, as on a cluster), a tiny four-trial sweep.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents } from 'bullmq';
import { QUEUE_NAME, QUEUE_PREFIX, asProgress } from '../queue/job.js';
import { writeWordCorpus } from './word-corpus.js';

const moec = fileURLToPath(new URL('../cli/moec.js', import.meta.url));

const sweep = (data: string) => `
data docs {
  source folder "${data}"
  label topic
  tokenizer bytes
  context 32
  valid 20%
}
model m { layers 1; width 32; heads 2; ffn 2x; dropout 0.1 }
train { steps 32; batch 4; lr 3e-3; warmup 2; seed 5 }
evaluate { every 8; batches 2 }
sweep { train.lr in [3e-3, 2e-3, 1e-3, 5e-4] }
`;

function corpus(dir: string): void {
  writeWordCorpus(dir, { vocab: 38, seed: 7, docs: 15, words: 300 });
}

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => resolve(p));
  });
});

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.on('exit', (code) => r(code))));

export interface QueueBench {
  /** Mean over trials: job added -> a worker took it; took it -> its first step event on the queue. */
  enqueueToActiveMs: number;
  activeToFirstStepMs: number;
  /** One job.updateProgress (a Redis round trip), and its arrival at a QueueEvents listener. */
  progressWriteMs: number;
  progressDeliveryMs: number;
  /** `moec run --queue` start to exit with 1 and 2 workers; the same sweep by `moec run` in one process. */
  wall: { workers: number; seconds: number }[];
  localSeconds: number;
  trials: number;
}

export async function benchQueue(log: (line: string) => void): Promise<QueueBench | { skipped: string }> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return { skipped: 'no redis-server on PATH (Debian: apt-get install redis-server)' };
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-bench-queue-'));
  const started: ChildProcess[] = [];
  const start = (cmd: string, args: string[]) => {
    const c = spawn(cmd, args, { cwd: dir, env: { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1' }, stdio: 'ignore' });
    started.push(c);
    return c;
  };
  try {
    corpus(path.join(dir, 'data'));
    const file = path.join(dir, 'sweep.moe');
    writeFileSync(file, sweep(path.join(dir, 'data')));
    let t0 = performance.now();
    const local = start(process.execPath, [moec, 'run', file, '--out', path.join(dir, 'local')]);
    if ((await exited(local)) !== 0) throw new Error('bench queue: the local moec run failed');
    const localSeconds = (performance.now() - t0) / 1000;
    log(`local run: ${localSeconds.toFixed(1)} s`);

    const port = await freePort();
    const redis = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
    const queue = new Queue(QUEUE_NAME, { connection, prefix: QUEUE_PREFIX });
    await queue.waitUntilReady();
    const events = new QueueEvents(QUEUE_NAME, { connection, prefix: QUEUE_PREFIX });
    await events.waitUntilReady();
    const firstStep = new Map<string, number>();
    events.on('progress', ({ jobId, data }) => {
      const p = asProgress(data);
      if (p?.kind === 'event' && p.event.type === 'step' && !firstStep.has(jobId)) firstStep.set(jobId, Date.now());
    });

    const wall: QueueBench['wall'] = [];
    let lat = { toActive: 0, toStep: 0, n: 0 };
    for (const n of [1, 2]) {
      const out = path.join(dir, `q${n}`);
      t0 = performance.now();
      const coordinator = start(process.execPath, [moec, 'run', file, '--queue', `redis://127.0.0.1:${port}`, '--out', out]);
      const workers = Array.from({ length: n }, () => start(process.execPath, [moec, 'worker', '--queue', `redis://127.0.0.1:${port}`]));
      if ((await exited(coordinator)) !== 0) throw new Error(`bench queue: moec run --queue with ${n} workers failed`);
      wall.push({ workers: n, seconds: (performance.now() - t0) / 1000 });
      log(`${n} worker(s): ${wall.at(-1)!.seconds.toFixed(1)} s`);
      for (const w of workers) w.kill('SIGINT');
      await Promise.all(workers.map(exited));
      if (n === 1) {
        // Latencies from the one-worker run: no trial waits for another worker's trial there... except in line;
        // so each trial's wait is measured from when the worker became free (the previous trial's finish).
        const jobs = (await queue.getJobs(['completed'])).sort((a, b) => (a.processedOn ?? 0) - (b.processedOn ?? 0));
        let free = 0;
        for (const j of jobs) {
          const step = firstStep.get(j.id!);
          if (!step || !j.processedOn) continue;
          lat.toActive += j.processedOn - Math.max(j.timestamp, free);
          lat.toStep += step - j.processedOn;
          lat.n++;
          free = j.finishedOn ?? free;
        }
      }
      await queue.obliterate({ force: true });
    }

    // Progress events alone: a job whose progress is written 200 times, each awaited, and heard by QueueEvents.
    const job = await queue.add('progress-probe', {}, { jobId: 'bench-progress' });
    const heard = new Map<number, number>();
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
      if (jobId === 'bench-progress' && typeof (data as { i?: unknown }).i === 'number') heard.set((data as { i: number }).i, performance.now());
    };
    events.on('progress', onProgress);
    const sent = new Map<number, number>();
    const N = 200;
    const w0 = performance.now();
    for (let i = 0; i < N; i++) {
      sent.set(i, performance.now());
      await job.updateProgress({ i });
    }
    const progressWriteMs = (performance.now() - w0) / N;
    const end = Date.now() + 10_000;
    while (heard.size < N && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    let delivery = 0;
    for (const [i, t] of heard) delivery += t - sent.get(i)!;
    await events.close();
    await queue.close();
    redis.kill('SIGTERM');
    await exited(redis);
    return {
      enqueueToActiveMs: lat.toActive / Math.max(1, lat.n), activeToFirstStepMs: lat.toStep / Math.max(1, lat.n),
      progressWriteMs, progressDeliveryMs: delivery / Math.max(1, heard.size), wall, localSeconds, trials: 4,
    };
  } finally {
    for (const c of started) if (c.exitCode === null && c.signalCode === null && c.pid) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
