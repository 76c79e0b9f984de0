// The one entry point the runner uses: a SweepListener that draws the sweep, and done() to finish.
// A terminal gets the Ink app; anything else (a pipe, a file, CI) gets plain log lines.
import { render } from 'ink';
import type { SweepListener } from '../train/events.js';
import { SweepApp } from './app.js';
import { createLogView } from './log-view.js';
import { SweepModel } from './sweep-model.js';

export interface SweepViewOptions {
  /** Draw the live Ink view (see `wantsLiveView`); false prints log lines. */
  tty: boolean;
  stdout: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Width override; by default the terminal's. */
  columns?: number;
  /** Log view only: a progress line every this many steps / seconds of trial time. */
  logEverySteps?: number;
  logEverySeconds?: number;
  /** An expert above this share of a layer's tokens is shown as a collapse (`moec run --collapse-share`). */
  collapseShare?: number;
}

export interface SweepView {
  listener: SweepListener;
  /** Prints a message from the runner above the live region (or as a log line), never tearing it. */
  message(text: string): void;
  /** Draws the final state and releases the terminal (cursor shown, nothing left half-drawn). */
  done(): Promise<void>;
}

export function createSweepView(opts: SweepViewOptions): SweepView {
  if (!opts.tty) {
    return createLogView({
      stdout: opts.stdout,
      ...(opts.stderr ? { stderr: opts.stderr } : {}),
      ...(opts.logEverySteps !== undefined ? { everySteps: opts.logEverySteps } : {}),
      ...(opts.logEverySeconds !== undefined ? { everySeconds: opts.logEverySeconds } : {}),
      ...(opts.collapseShare !== undefined ? { collapseShare: opts.collapseShare } : {}),
    });
  }
  const model = new SweepModel();
  if (opts.collapseShare !== undefined) model.collapseShare = opts.collapseShare;
  const stdout = opts.stdout as NodeJS.WriteStream;
  const app = (final: boolean) => (
    <SweepApp model={model} {...(opts.columns !== undefined ? { columns: opts.columns } : {})} tickMs={final ? 0 : 1000} />
  );
  const instance = render(app(false), {
    stdout,
    ...(opts.stderr ? { stderr: opts.stderr as NodeJS.WriteStream } : {}),
    // Ctrl-C belongs to the runner (it stops after a checkpoint), so Ink must not take it.
    exitOnCtrlC: false,
    // Stray console output from the run is printed above the live region instead of tearing it.
    patchConsole: stdout === process.stdout,
    maxFps: 10,
  });
  let finished: Promise<void> | undefined;
  return {
    listener: (e) => model.apply(e),
    message: (text) => model.message(text),
    done() {
      finished ??= (async () => {
        // A last synchronous render so the final counts are on screen, then let Ink restore the terminal.
        // waitUntilExit before unmount: Ink only resolves a promise that exists when it unmounts.
        const exited = instance.waitUntilExit();
        instance.rerender(app(true));
        instance.unmount();
        await exited;
      })();
      return finished;
    },
  };
}

/**
 * Whether `stream` should get the live view: a terminal, and not CI (Ink only prints the last frame
 * there). Mirrors the `is-in-ci` check Ink itself makes.
 */
export function wantsLiveView(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const set = (key: string) => key in env && env[key] !== '0' && env[key] !== 'false';
  return stream.isTTY === true && !set('CI') && !set('CONTINUOUS_INTEGRATION');
}
