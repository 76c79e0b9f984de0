import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SweepEvent } from '../../../runtime/train/events.js';
import { createLogView } from '../../../runtime/ui/log-view.js';
import { createSweepView } from '../../../runtime/ui/sweep-view.js';
import { replayDemo } from '../../../runtime/ui/demo.js';
import { Capture, step, sweepStart, trial } from './helpers.js';

test('without a terminal: one line per start, end and evaluation, progress sampled, exact text', async () => {
  const stdout = new Capture();
  const stderr = new Capture();
  let clock = 1_000_000;
  const view = createLogView({ stdout, stderr, everySteps: 100, everySeconds: 30, now: () => clock });
  const events: SweepEvent[] = [
    sweepStart([trial('a1', 'top=1 unit=token', 300), trial('b2', 'top=2 unit=sequence', 300), trial('c3', 'dense', 300, false)]),
    { type: 'trial-start', id: 'a1' },
    // Steps 1..99 stay quiet; 100 and 200 are due by step count.
    ...Array.from({ length: 300 }, (_, i) => step('a1', i + 1, 5 - i / 100, (i + 1) * 0.1)),
    { type: 'eval', id: 'a1', step: 300, validLoss: 2.1, validPpl: Math.exp(2.1), expertLoad: [[0.25, 0.25, 0.25, 0.25]] },
    { type: 'checkpoint', id: 'a1', step: 300, path: 'runs/ablation/a1/ckpt' },
    { type: 'trial-end', id: 'a1', status: 'done', wallSeconds: 31 },
    { type: 'trial-start', id: 'b2', resumedFrom: 250 },
    // Slow steps: 40 s of trial time passes before step 260, so it is due by time.
    step('b2', 251, 3.5, 1),
    step('b2', 260, 3.4, 41),
    { type: 'trial-end', id: 'b2', status: 'failed', error: 'out of memory\n  at dispatch router', wallSeconds: 42 },
    { type: 'trial-end', id: 'c3', status: 'skipped', error: 'finished in an earlier run', wallSeconds: 0 },
    { type: 'sweep-end', out: 'runs/ablation' },
  ];
  for (const e of events) {
    if (e.type === 'sweep-end') clock += 75_000;
    if (e.type === 'sweep-end') view.message('stopping: nothing left to run');
    view.listener(e);
  }
  await view.done();
  assert.deepEqual(stdout.lines(), [
    'sweep ablation: 3 trials on llvmpipe (LLVM 19, 256 bits), out runs/ablation',
    '[1/3] start   a1 top=1 unit=token (300 steps, 5.28M params, 3.72M active)',
    '[1/3] step    a1 100/300 loss 4.0100 ppl 55.15 tok/s 12.3k eta 20s',
    '[1/3] step    a1 200/300 loss 3.0100 ppl 20.29 tok/s 12.3k eta 10s',
    '[1/3] step    a1 300/300 loss 2.0100 ppl 7.46 tok/s 12.3k eta 0s',
    '[1/3] eval    a1 300/300 valid loss 2.1000 ppl 8.17',
    '[1/3] done    a1 300/300 valid ppl 8.17 wall 31s',
    '[2/3] start   b2 top=2 unit=sequence (300 steps, 5.28M params, 3.72M active, resumed at step 250)',
    '[2/3] step    b2 260/300 loss 3.4000 ppl 29.96 tok/s 12.3k eta 2m44s',
    '[2/3] failed  b2 260/300 wall 42s: out of memory',
    '[3/3] skipped c3: finished in an earlier run',
    'stopping: nothing left to run',
    'sweep ablation finished: 1 done, 1 failed, 1 skipped, 0 stopped, 0 not run of 3 in 1m15s; out runs/ablation',
  ]);
  // The whole multi-line error goes to stderr, once.
  assert.equal(stderr.text, '[2/3] b2 error:\nout of memory\n  at dispatch router\n');
});

test('the default sampling gives about ten progress lines per trial, never one per step', async () => {
  const stdout = new Capture();
  const view = createSweepView({ tty: false, stdout });
  await replayDemo(view.listener, { trials: 3, steps: 400, failEvery: 0, concurrency: 1 });
  await view.done();
  const lines = stdout.lines();
  assert.equal(lines.filter((l) => / step {4}t001 /.test(l)).length, 10);
  assert.equal(lines.filter((l) => / eval {4}t001 /.test(l)).length, 4);
  // Plain text only: no escape sequences in a pipe.
  assert.ok(!stdout.text.includes('\u001b'));
  assert.match(lines.at(-1)!, /^sweep demo finished: 3 done, 0 failed, 0 skipped, 0 stopped, 0 not run of 3 in \d+s; out runs\/demo$/);
});
