// The one place a worker takes a trial before it trains it into a run store.
import type { TrialStore } from '../store/run-store.js';

export type Claim = { ok: true; release: () => void } | { ok: false; message: string };

/** Claims `ts` for this process (the trial lock of runtime/store/lock.ts, once it lands). */
export function claimTrial(_ts: TrialStore, _purpose: string): Claim {
  return { ok: true, release: () => {} };
}
