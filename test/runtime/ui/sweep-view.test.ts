import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSweepView, wantsLiveView } from '../../../runtime/ui/sweep-view.js';
import { replayDemo } from '../../../runtime/ui/demo.js';
import { Capture, plainText } from './helpers.js';

test('on a terminal: each finished trial is printed once, the screen is never cleared, done() restores it', async () => {
  const stdout = new Capture({ tty: true, columns: 120, rows: 40 });
  const view = createSweepView({ tty: true, stdout, columns: 120 });
  await replayDemo(view.listener, { trials: 40, steps: 10, concurrency: 2 });
  await view.done();
  await view.done(); // a second call is harmless
  const text = plainText(stdout.text);
  for (let i = 1; i <= 40; i++) {
    const id = String(i).padStart(2, ' ');
    const count = text.split(`[${id}/40] `).length - 1;
    assert.equal(count, 1, `trial ${i} printed ${count} times`);
  }
  // Clearing the screen is what makes a long sweep jump; Ink only does it when the live region
  // outgrows the terminal.
  assert.ok(!stdout.text.includes('\u001b[2J'), 'the screen was cleared');
  // The cursor is visible afterwards (Ink hides it while drawing).
  const hides = stdout.text.split('\u001b[?25l').length - 1;
  const shows = stdout.text.split('\u001b[?25h').length - 1;
  assert.ok(shows >= hides, `cursor hidden ${hides} times, shown ${shows} times`);
  assert.match(text, /trials 40\/40 finished · 38 done · 0 running · 2 failed · elapsed \d+s/);
  // Events after done() are ignored by the unmounted app instead of writing to the terminal.
  const length = stdout.text.length;
  view.listener({ type: 'sweep-end', out: 'runs/demo' });
  await new Promise((r) => setImmediate(r));
  assert.equal(stdout.text.length, length);
});

test('the live view is for terminals outside CI', () => {
  assert.equal(wantsLiveView({ isTTY: true }, {}), true);
  assert.equal(wantsLiveView({ isTTY: false }, {}), false);
  assert.equal(wantsLiveView({}, {}), false);
  assert.equal(wantsLiveView({ isTTY: true }, { CI: 'true' }), false);
  assert.equal(wantsLiveView({ isTTY: true }, { CI: 'false' }), true);
});
