// A synthetic sweep for trying and testing the terminal UI without a GPU: deterministic losses,
// evaluations and expert loads, replayed at a chosen pace. Run it as a script:
//   node dist/runtime/ui/demo.js [--trials 100] [--steps 40] [--delay-ms 5] [--concurrency 2] [--log]
import { realpathSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UserError } from '../../grammar/user-error.js';
import type { SweepEvent, SweepListener, TrialInfo } from '../train/events.js';
import { createSweepView, wantsLiveView } from './sweep-view.js';
import { rng } from '../../compiler/reference/random.js';

export interface DemoOptions {
  trials?: number;
  steps?: number;
  /** Trials that run side by side (their step events interleave). */
  concurrency?: number;
  /** An evaluation (with expert load) every this many steps. */
  evalEvery?: number;
  /** Every n-th trial fails half way (0: none). */
  failEvery?: number;
  seed?: number;
}

const UNITS = ['token', 'sequence'];
const TOPS = [1, 2];
const EXPERTS = [4, 8, 16];

/** The trials of a demo sweep: an ablation grid over unit × top × experts × seed, every 12th dense. */
export function demoTrials(count: number, steps: number): TrialInfo[] {
  return Array.from({ length: count }, (_, i) => {
    const dense = i % 12 === 11;
    const unit = UNITS[i % 2]!;
    const top = TOPS[Math.floor(i / 2) % 2]!;
    const experts = EXPERTS[Math.floor(i / 4) % 3]!;
    const seed = Math.floor(i / 12) + 1;
    const name = dense ? `dense same-active seed=${seed}` : `unit=${unit} top=${top} experts=${experts} seed=${seed}`;
    const total = dense ? 3_200_000 : 3_200_000 + experts * 520_000;
    const active = dense ? total : 3_200_000 + top * 520_000;
    return {
      id: `t${String(i + 1).padStart(3, '0')}`,
      name,
      steps,
      params: { total, active },
      moeLayers: dense ? 0 : 4,
      experts: dense ? 0 : experts,
    };
  });
}

/** The whole event stream of a demo sweep, in the order a runner would emit it. */
export function* demoEvents(opts: DemoOptions = {}): Generator<SweepEvent> {
  const steps = opts.steps ?? 40;
  const evalEvery = opts.evalEvery ?? Math.max(1, Math.floor(steps / 4));
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  const failEvery = opts.failEvery ?? 17;
  const trials = demoTrials(opts.trials ?? 100, steps);
  const rnd = rng(opts.seed ?? 1);
  yield { type: 'sweep-start', sweep: 'demo', adapter: 'synthetic (no GPU)', out: 'runs/demo', trials };
  // Trials run in waves of `concurrency`; within a wave their steps interleave.
  for (let w = 0; w < trials.length; w += concurrency) {
    const wave = trials.slice(w, w + concurrency).map((info, k) => ({
      info,
      index: w + k + 1,
      failAt: failEvery > 0 && (w + k + 1) % failEvery === 0 ? Math.floor(steps / 2) : -1,
      floor: 2.9 + rnd() * 0.6,
      skew: Array.from({ length: info.moeLayers }, () => Array.from({ length: info.experts }, () => rnd())),
      ended: false,
    }));
    for (const t of wave) yield { type: 'trial-start', id: t.info.id };
    const secondsPerStep = 0.5;
    for (let step = 1; step <= steps; step++) {
      for (const t of wave) {
        if (t.ended) continue;
        const elapsed = step * secondsPerStep;
        if (step === t.failAt) {
          t.ended = true;
          const error = `trial ${t.info.id}: loss is NaN at step ${step}\n  (learning rate too high?)`;
          yield { type: 'trial-end', id: t.info.id, status: 'failed', error, wallSeconds: elapsed };
          continue;
        }
        const loss = t.floor + 7.9 * Math.exp(-step / (steps / 5)) + 0.05 * (rnd() - 0.5);
        yield { type: 'step', id: t.info.id, step, loss, lr: 6e-4, tokensPerSec: 12_000 + 800 * rnd(), elapsed };
        if (step % evalEvery === 0 || step === steps) {
          const validLoss = loss + 0.08;
          const event: SweepEvent = { type: 'eval', id: t.info.id, step, validLoss, validPpl: Math.exp(validLoss) };
          // The router balances over training: skewed early, near uniform late.
          const balance = step / steps;
          if (t.info.moeLayers > 0) {
            event.expertLoad = t.skew.map((row) => {
              const w = row.map((s) => (1 - balance) * s ** 3 + balance * 0.5 + 0.02);
              const sum = w.reduce((a, b) => a + b, 0);
              return w.map((x) => x / sum);
            });
          }
          yield event;
        }
        if (step === steps) {
          t.ended = true;
          yield { type: 'checkpoint', id: t.info.id, step, path: `runs/demo/${t.info.id}/checkpoint` };
          yield { type: 'trial-end', id: t.info.id, status: 'done', wallSeconds: elapsed };
        }
      }
    }
  }
  yield { type: 'sweep-end', out: 'runs/demo' };
}

/** Feeds a demo sweep to `listener`, pausing `delayMs` after each step event (0: as fast as possible). */
export async function replayDemo(listener: SweepListener, opts: DemoOptions & { delayMs?: number } = {}): Promise<void> {
  for (const e of demoEvents(opts)) {
    listener(e);
    if (e.type === 'step' && (opts.delayMs ?? 0) > 0) await sleep(opts.delayMs);
  }
}

const USAGE = 'usage: node dist/runtime/ui/demo.js [--trials N] [--steps N] [--delay-ms MS] [--concurrency N] [--log]';

function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UserError(`${flag} needs a whole number ≥ 0, not '${text}'`, { where: flag });
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      trials: { type: 'string' },
      steps: { type: 'string' },
      'delay-ms': { type: 'string' },
      concurrency: { type: 'string' },
      log: { type: 'boolean' },
    },
  });
  const view = createSweepView({ tty: !values.log && wantsLiveView(process.stdout), stdout: process.stdout, stderr: process.stderr });
  await replayDemo(view.listener, {
    trials: positiveInt('--trials', values.trials, 100),
    steps: Math.max(1, positiveInt('--steps', values.steps, 40)),
    delayMs: positiveInt('--delay-ms', values['delay-ms'], 5),
    concurrency: Math.max(1, positiveInt('--concurrency', values.concurrency, 2)),
  });
  await view.done();
  return 0;
}

const isScript = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isScript) {
  main(process.argv.slice(2)).then(
    (status) => process.exit(status),
    (err) => {
      // Bad flags (UserError, or parseArgs' ERR_PARSE_ARGS_*) are the user's to fix: message and usage, no stack.
      const code = (err as { code?: unknown }).code;
      if (err instanceof UserError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
        console.error(`${err instanceof UserError ? err.format() : `error: ${(err as Error).message}`}\n${USAGE}`);
        process.exit(1);
      }
      console.error(err);
      process.exit(70);
    },
  );
}
