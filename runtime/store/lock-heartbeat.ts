// The heartbeat of every lock this process holds, on a thread of its own: a main thread that blocks
// for longer than the stale timeout (a long pipeline compile, a synchronous read) must not let
// another host take a live lock over. The main thread adds and removes locks; this thread refreshes
// their mtimes and says when one was taken over (its token is no longer in the file).
import { readFileSync, utimesSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export type HeartbeatMessage = { add: { file: string; token: string; everyMs: number } } | { remove: string };

const timers = new Map<string, NodeJS.Timeout>();

function tokenIn(file: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { token?: string }).token;
  } catch {
    return undefined;
  }
}

function beat(file: string, token: string): void {
  try {
    if (tokenIn(file) !== token) {
      clearInterval(timers.get(file));
      timers.delete(file);
      parentPort!.postMessage({ lost: file, token });
      return;
    }
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    // A missed beat only brings a takeover closer; the next one tries again.
  }
}

parentPort!.on('message', (m: HeartbeatMessage) => {
  if ('add' in m) {
    const { file, token, everyMs } = m.add;
    clearInterval(timers.get(file));
    timers.set(file, setInterval(() => beat(file, token), everyMs));
  } else {
    clearInterval(timers.get(m.remove));
    timers.delete(m.remove);
  }
});
