// The compile phase, the router's statistics and the sweep-wide ETA in the live view and the log.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SweepModel } from '../../../runtime/ui/sweep-model.js';
import { lineText, liveLines } from '../../../runtime/ui/screen-lines.js';
import { createLogView } from '../../../runtime/ui/log-view.js';
import { Capture, step, sweepStart, trial } from './helpers.js';

const screen = (m: SweepModel) => liveLines(m, { width: 110, rows: 40 }).map(lineText);

test('compilation is its own phase: kernels done of total, a running clock, no tokens/s or ETA, and left out of the sweep ETA', () => {
  let clock = 0;
  const m = new SweepModel(() => clock);
  m.apply(sweepStart([trial('a1', 'top=1', 100), trial('b2', 'top=2', 100)]));
  m.apply({ type: 'compile', id: 'a1', done: 0, total: 40, shared: 0, seconds: 0 });
  clock += 30_000;
  m.apply({ type: 'compile', id: 'a1', done: 12, total: 40, shared: 0, seconds: 30 });
  clock += 15_000;
  let s = screen(m);
  const row = s.find((l) => l.startsWith('▶ top=1'))!;
  // The clock runs on between kernel events: 45 s, not the 30 s of the last event.
  assert.match(row, /compiling kernels 12\/40 · 45s$/, s.join('\n'));
  assert.doesNotMatch(row, /tok\/s|\d+\/100/);
  assert.ok(s.some((l) => l.includes('compiling 28 more kernels before step 1')), s.join('\n'));
  assert.match(s[1]!, /sweep ETA -$/, 'no step timed yet: no ETA, whatever the compile took');

  m.apply({ type: 'compile', id: 'a1', done: 40, total: 40, shared: 0, seconds: 60 });
  m.apply({ type: 'trial-start', id: 'a1' });
  // 10 steps in 5 s of training: 190 steps left at 0.5 s; the minute of compiling is not in it.
  m.apply(step('a1', 10, 3, 5));
  s = screen(m);
  assert.match(s[1]!, /sweep ETA 1m35s$/, s.join('\n'));
  assert.match(s.find((l) => l.startsWith('▶ top=1'))!, /10\/100 .* 45s$/);

  // The second trial finds most kernels compiled by the first.
  m.apply({ type: 'trial-end', id: 'a1', status: 'done', wallSeconds: 50 });
  m.apply({ type: 'compile', id: 'b2', done: 38, total: 40, shared: 36, seconds: 2 });
  assert.match(screen(m).find((l) => l.startsWith('▶ top=2'))!, /compiling kernels 38\/40, 36 reused · /);
});

test('the router statistics of the last logged step show beside the loss', () => {
  const m = new SweepModel(() => 0);
  m.apply(sweepStart([trial('a1', 'top=1', 100)]));
  m.apply({ type: 'trial-start', id: 'a1' });
  m.apply({ ...step('a1', 10, 3, 5), moe: { balance: [1.02, 1.1], z: [0.5, 0.7], dropped: [0, 0.125] } } as never);
  const s = screen(m);
  assert.ok(s.includes('  balance loss 1.060 · z loss 0.600 · dropped 6.3% (worst layer 12.5%) · mean of 2 layers'), s.join('\n'));
});

test('the log view prints the start and the end of the compile phase', () => {
  const out = new Capture();
  const v = createLogView({ stdout: out });
  v.listener(sweepStart([trial('a1', 'top=1', 100)]));
  v.listener({ type: 'compile', id: 'a1', done: 0, total: 40, shared: 0, seconds: 0 });
  v.listener({ type: 'compile', id: 'a1', done: 20, total: 40, shared: 0, seconds: 9 });
  v.listener({ type: 'compile', id: 'a1', done: 40, total: 40, shared: 30, seconds: 75 });
  const lines = out.lines();
  assert.deepEqual(lines.slice(1), ['[1/1] compile a1 top=1: 40 kernels', '[1/1] compile a1 40/40 kernels ready in 1m15s (30 reused: identical to a kernel compiled before)']);
});

test("the sweep ETA counts a finished trial's evaluations and final checkpoint, not only its steps", () => {
  let clock = 0;
  const m = new SweepModel(() => clock);
  m.apply(sweepStart([trial('a1', 'top=1', 10), trial('b2', 'top=2', 10)]));
  m.apply({ type: 'trial-start', id: 'a1' });
  clock += 5_000;
  m.apply(step('a1', 10, 3, 5));
  // The last evaluation and the checkpoint take as long again as the 10 steps did.
  clock += 5_000;
  m.apply({ type: 'trial-end', id: 'a1', status: 'done', wallSeconds: 10 });
  assert.equal(m.sweepEtaSeconds(), 10);
  assert.match(screen(m)[1]!, /sweep ETA 10s$/);
});
