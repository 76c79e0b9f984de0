// Real processes for the queue tests: a redis-server of our own on a free port, moec coordinators
// and workers, each stopped by its pid when the test ends (also when it fails).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeWordCorpus } from '../../../runtime/bench/word-corpus.js';

export const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

export interface Proc {
  child: ChildProcess;
  /** stdout and stderr as they arrive. */
  output(): string;
  exited: Promise<number | null>;
}

export class Procs {
  private readonly all: Proc[] = [];

  start(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Proc {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const p = { child, output: () => text, exited };
    this.all.push(p);
    return p;
  }

  /** SIGKILL every process still running that this test started, by pid; `failed`: print what each said. */
  async stopAll(failed = false): Promise<void> {
    if (failed) for (const p of this.all) process.stderr.write(`--- ${p.child.spawnargs.slice(1, 4).join(' ')} (pid ${p.child.pid}):\n${p.output()}\n`);
    for (const p of this.all) if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid) {
      try { process.kill(p.child.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    }
    await Promise.all(this.all.map((p) => p.exited));
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs: number, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Starts redis-server with `args` and waits until it accepts connections. */
export async function startRedis(procs: Procs, cwd: string, args: string[]): Promise<Proc> {
  const p = procs.start('redis-server', ['--bind', '127.0.0.1', '--save', '', ...args], { cwd });
  await waitFor('redis-server to accept connections', () => /Ready to accept connections/.test(p.output()) || p.child.exitCode !== null, 10_000);
  if (p.child.exitCode !== null) throw new Error(`redis-server did not start:\n${p.output()}`);
  return p;
}

/** A folder of text files in two topics (no network), as the resume tests use. */
export function corpus(dir: string): void {
  writeWordCorpus(dir, { vocab: 72, seed: 7, docs: 15, words: 300 });
}

/** Two tiny trials (a learning-rate sweep), a checkpoint every 4 steps. */
export const sweepMoe = (data: string, steps = 32) => `
data docs {
  source folder "${data}"
  label topic
  tokenizer bytes
  context 32
  valid 20%
}
model m { layers 1; width 32; heads 2; ffn 2x; dropout 0.1 }
train { steps ${steps}; batch 4; lr 3e-3; warmup 2; seed 5 }
evaluate { every 4; batches 2 }
sweep { train.lr in [3e-3, 1e-3] }
`;

export function trialIds(runDir: string): string[] {
  return readdirSync(runDir).filter((d) => existsSync(path.join(runDir, d, 'config.json'))).sort();
}

/** step -> training loss from a trial's metrics.jsonl; fails on a step logged twice. */
export function trainLosses(trialDir: string): Map<number, number> {
  const lines = readFileSync(path.join(trialDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; loss: number });
  const out = new Map<number, number>();
  for (const m of lines.filter((x) => x.kind === 'train')) {
    if (out.has(m.step)) throw new Error(`${trialDir}: step ${m.step} logged twice`);
    out.set(m.step, m.loss);
  }
  return out;
}

/** A one-process `moec run` of `file` into `out`: the reference the queued sweep must equal. */
export function runLocally(file: string, out: string, env: NodeJS.ProcessEnv): void {
  const r = spawnSync(process.execPath, [moec, 'run', file, '--out', out], { cwd: path.dirname(file), env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`moec run failed:\n${r.stdout}\n${r.stderr}`);
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}
