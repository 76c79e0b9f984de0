// Test doubles for the views: a stream that records what was written, and a hand-made sweep.
import { Writable } from 'node:stream';
import type { SweepEvent, TrialInfo } from '../../../runtime/train/events.js';

export class Capture extends Writable {
  text = '';
  isTTY: boolean;
  columns: number;
  rows: number;
  constructor(opts: { tty?: boolean; columns?: number; rows?: number } = {}) {
    super();
    this.isTTY = opts.tty ?? false;
    this.columns = opts.columns ?? 100;
    this.rows = opts.rows ?? 40;
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
  lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '');
  }
}

export function trial(id: string, name: string, steps: number, moe = true): TrialInfo {
  return { id, name, steps, params: { total: 5_280_000, active: 3_720_000 }, moeLayers: moe ? 2 : 0, experts: moe ? 4 : 0 };
}

export const sweepStart = (trials: TrialInfo[]): SweepEvent => ({
  type: 'sweep-start',
  sweep: 'ablation',
  adapter: 'llvmpipe (LLVM 19, 256 bits)',
  out: 'runs/ablation',
  trials,
});

export const step = (id: string, s: number, loss: number, elapsed: number): SweepEvent => ({
  type: 'step',
  id,
  step: s,
  loss,
  lr: 6e-4,
  tokensPerSec: 12_345,
  elapsed,
});

/** Strips ANSI escapes (colours, cursor moves) so frames compare as the user reads them. */
export function plainText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;?<>=]*[ -/]*[@-~]/g, '').replace(/\u001b\][^\u0007]*\u0007/g, '');
}
