// The sweep as plain log lines, for pipes and CI: no escape codes, one line per fact, and a fixed
// `[ i/n] verb   id ...` shape so `grep '] eval'` or `grep <trial id>` pull out what is wanted.
// Training progress is sampled (every N steps or M seconds of trial time), never one line per step.
import type { SweepEvent, SweepListener } from '../train/events.js';
import { etaSeconds, formatCount, formatDuration, formatFixed, perplexity } from './format.js';
import { SweepModel, type TrialState } from './sweep-model.js';
import { loadText } from './collapse.js';
import type { SweepView } from './sweep-view.js';

export interface LogViewOptions {
  stdout: NodeJS.WritableStream;
  /** Full text of a failed trial's error when it has more than one line. */
  stderr?: NodeJS.WritableStream;
  /** A progress line at least every this many steps (default: a tenth of the trial's steps). */
  everySteps?: number;
  /** ... or when this many seconds of trial time passed since the last one (default 30). */
  everySeconds?: number;
  now?: () => number;
  /** An expert above this share of a layer's tokens is reported as a collapse (default collapse.ts). */
  collapseShare?: number;
}

export function createLogView(opts: LogViewOptions): SweepView {
  const model = new SweepModel(opts.now);
  if (opts.collapseShare !== undefined) model.collapseShare = opts.collapseShare;
  // The collapse warning last printed per trial: printed when it starts or changes, not every step.
  const warned = new Map<string, string | undefined>();
  const everySeconds = opts.everySeconds ?? 30;
  const lastLogged = new Map<string, { step: number; elapsed: number }>();
  const write = (line: string) => opts.stdout.write(`${line}\n`);
  const prefix = (t: TrialState) => {
    const n = String(model.trials.length);
    return `[${String(t.index).padStart(n.length)}/${n}]`;
  };
  const line = (t: TrialState, verb: string, rest: string) => write(`${prefix(t)} ${verb.padEnd(7)} ${t.info.id} ${rest}`);
  const progress = (t: TrialState) => `${t.step}/${t.info.steps}`;

  const listener: SweepListener = (e: SweepEvent) => {
    model.apply(e);
    switch (e.type) {
      case 'sweep-start':
        write(`sweep ${e.sweep}: ${e.trials.length} trials on ${e.adapter}, out ${e.out}`);
        break;
      case 'compile': {
        // The first and the last event of the phase: enough to see it began and how long it took.
        const t = model.get(e.id);
        if (e.done === 0) line(t, 'compile', `${t.info.name}: ${e.total} kernels`);
        else if (e.done === e.total) line(t, 'compile', `${e.done}/${e.total} kernels ready in ${formatDuration(e.seconds)}${e.shared ? ` (${e.shared} reused: identical to a kernel compiled before)` : ''}`);
        break;
      }
      case 'trial-start': {
        const t = model.get(e.id);
        lastLogged.set(e.id, { step: t.step, elapsed: 0 });
        const { total, active } = t.info.params;
        const from = e.resumedFrom !== undefined ? `, resumed at step ${e.resumedFrom}` : '';
        line(t, 'start', `${t.info.name} (${t.info.steps} steps, ${formatCount(total)} params, ${formatCount(active)} active${from})`);
        if (e.note) line(t, 'note', e.note);
        break;
      }
      case 'step': {
        const t = model.get(e.id);
        if (t.collapse !== warned.get(e.id)) {
          if (t.collapse) line(t, 'warn', `${progress(t)} ${t.collapse}`);
          warned.set(e.id, t.collapse);
        }
        const last = lastLogged.get(e.id) ?? { step: t.firstStep, elapsed: 0 };
        const everySteps = opts.everySteps ?? Math.max(1, Math.ceil(t.info.steps / 10));
        if (e.step - last.step < everySteps && e.elapsed - last.elapsed < everySeconds) break;
        lastLogged.set(e.id, { step: e.step, elapsed: e.elapsed });
        const eta = etaSeconds(e.step, t.info.steps, t.firstStep, e.elapsed);
        line(
          t,
          'step',
          t.info.task === 'classification'
            ? `${progress(t)} loss ${formatFixed(e.loss, 4)} samples/s ${formatCount(e.tokensPerSec)} eta ${formatDuration(eta)}`
            : `${progress(t)} loss ${formatFixed(e.loss, 4)} ppl ${formatFixed(perplexity(e.loss), 2)}${e.total !== undefined && e.total !== e.loss ? ` total ${formatFixed(e.total, 4)}` : ''}${t.load ? ` load ${loadText(t.load)}` : ''} tok/s ${formatCount(e.tokensPerSec)} eta ${formatDuration(eta)}`,
        );
        break;
      }
      case 'eval': {
        const t = model.get(e.id);
        const score = e.validAcc !== undefined ? `acc ${formatFixed(e.validAcc, 3)}` : `ppl ${formatFixed(e.validPpl, 2)}`;
        line(t, 'eval', `${e.step}/${t.info.steps} valid loss ${formatFixed(e.validLoss, 4)} ${score}`);
        break;
      }
      case 'checkpoint':
        break;
      case 'trial-end': {
        const t = model.get(e.id);
        lastLogged.delete(e.id);
        const wall = `wall ${formatDuration(e.wallSeconds)}`;
        if (e.status === 'failed') {
          const message = e.error ?? 'no error message';
          const [first = '', ...more] = message.split('\n');
          line(t, 'failed', `${progress(t)} ${wall}: ${first}`);
          if (more.length > 0 && opts.stderr) opts.stderr.write(`${prefix(t)} ${t.info.id} error:\n${message}\n`);
        } else if (e.status === 'done') {
          line(t, 'done', `${progress(t)} ${t.validAcc !== undefined ? `valid acc ${formatFixed(t.validAcc, 3)}` : `valid ppl ${formatFixed(t.validPpl, 2)}`} ${wall}`);
        } else if (e.status === 'skipped') {
          write(`${prefix(t)} skipped ${t.info.id}${e.error ? `: ${e.error.split('\n')[0]}` : ''}`);
        } else {
          line(t, e.status, `${progress(t)} ${wall}${e.error ? `: ${e.error.split('\n')[0]}` : ''}`);
        }
        break;
      }
      case 'sweep-end': {
        const c = model.counts();
        const name = model.header?.sweep ?? '';
        write(
          `sweep ${name} finished: ${c.done} done, ${c.failed} failed, ${c.skipped} skipped, ${c.stopped} stopped, ` +
            `${c.pending + c.running} not run of ${model.trials.length} in ${formatDuration(model.elapsedSeconds())}; out ${e.out}`,
        );
        break;
      }
    }
  };
  return { listener, message: (text) => write(text), done: () => Promise.resolve() };
}

