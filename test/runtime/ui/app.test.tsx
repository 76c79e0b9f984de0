import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { render, cleanup } from 'ink-testing-library';
import { SweepApp } from '../../../runtime/ui/app.js';
import { SweepModel } from '../../../runtime/ui/sweep-model.js';
import { demoEvents } from '../../../runtime/ui/demo.js';
import { plainText, step, sweepStart, trial } from './helpers.js';

afterEach(() => cleanup());

// React commits state updates made outside its own handlers in a microtask; let it run.
const settle = () => new Promise((resolve) => setImmediate(resolve));
const frameLines = (frame: string | undefined) => plainText(frame ?? '').split('\n');

function setup(throttleMs = 0) {
  let clock = 0;
  const model = new SweepModel(() => clock);
  const ui = render(<SweepApp model={model} throttleMs={throttleMs} tickMs={0} columns={100} rows={40} />);
  return { model, ui, advance: (ms: number) => (clock += ms) };
}

test('the live view shows header, trial rows with progress, a loss sparkline and the expert-load heat map', async () => {
  const { model, ui, advance } = setup();
  model.apply(sweepStart([trial('a1', 'top=1 unit=token', 40), trial('b2', 'top=2 unit=sequence', 40), trial('c3', 'dense', 40, false)]));
  model.apply({ type: 'trial-start', id: 'a1' });
  for (let s = 1; s <= 10; s++) model.apply(step('a1', s, 6 - s * 0.3, s * 0.5));
  advance(5_000);
  model.apply({ type: 'eval', id: 'a1', step: 10, validLoss: 3.2, validPpl: 24.53, expertLoad: [[0.05, 0.15, 0.3, 0.5], [0.25, 0.25, 0.25, 0.25]] });
  await settle();
  const lines = frameLines(ui.lastFrame());
  assert.deepEqual(lines.slice(0, 2), [
    'moec  sweep ablation · llvmpipe (LLVM 19, 256 bits) · out runs/ablation',
    // 10 steps in 5 s: 110 steps left in the sweep at 0.5 s each.
    'trials 0/3 finished · 0 done · 1 running · 0 failed · 2 pending · elapsed 5s · sweep ETA 55s',
  ]);
  const row = lines.find((l) => l.startsWith('▶ top=1 unit=token'));
  assert.ok(row, lines.join('\n'));
  // 10 of 40 steps: a quarter of the bar filled, then loss, validation perplexity, tokens/s, ETA.
  assert.match(row, / ████▌░{13} 10\/40 +3\.0000 +24\.53 +12\.3k +15s$/);
  assert.ok(lines.some((l) => l.startsWith('· top=2 unit=sequence') && l.endsWith('pending')));
  assert.ok(lines.includes('  loss █▇▆▆▅▄▃▃▂▁ 5.7000 → 3.0000'), lines.join('\n'));
  assert.ok(lines.includes('  expert load at step 10 (2 layers × 4 experts)'));
  // Against the uniform 25%: 5% blank, 15% light, 30% dark, 50% full; a balanced layer is mid-grey.
  assert.ok(lines.includes('  L0 │  ░░▓▓██│'), lines.join('\n'));
  assert.ok(lines.includes('  L1 │▒▒▒▒▒▒▒▒│'));
  assert.ok(lines.includes("  load per expert: ' '<10% ░<20% ▒<30% ▓<40% █≥40%"));
});

test('finished trials move to the static area as one line each and leave the live table', async () => {
  const { model, ui } = setup();
  model.apply(sweepStart([trial('a1', 'top=1 unit=token', 20), trial('b2', 'top=2 unit=sequence', 20), trial('c3', 'dense', 20, false)]));
  model.apply({ type: 'trial-start', id: 'a1' });
  model.apply(step('a1', 20, 2.5, 10));
  model.apply({ type: 'eval', id: 'a1', step: 20, validLoss: 2.6, validPpl: 13.46 });
  model.apply({ type: 'trial-end', id: 'a1', status: 'done', wallSeconds: 11 });
  model.apply({ type: 'trial-start', id: 'b2' });
  model.apply(step('b2', 5, 4, 2));
  model.apply({ type: 'trial-end', id: 'b2', status: 'failed', error: 'out of memory\nmore', wallSeconds: 3 });
  model.apply({ type: 'trial-start', id: 'c3' });
  model.apply(step('c3', 1, 9, 1));
  await settle();
  const lines = frameLines(ui.lastFrame());
  // Static output comes first, above the live region, once per trial.
  assert.match(lines[0]!, /^✔ \[1\/3\] top=1 unit=token +20\/20  loss 2\.5000  val ppl +13\.46 +12\.3k tok\/s  wall 11s$/);
  assert.match(lines[1]!, /^✘ \[2\/3\] top=2 unit=sequence +failed at 5\/20, wall 3s: out of memory$/);
  assert.ok(lines[2]!.startsWith('moec  sweep ablation'), lines.join('\n'));
  assert.equal(lines.filter((l) => l.includes('top=1 unit=token')).length, 1);
  assert.equal(lines.filter((l) => l.includes('top=2 unit=sequence')).length, 1);
  assert.ok(lines.some((l) => l.startsWith('▶ dense ')));
  assert.ok(lines.includes('  dense model: no expert load'));
  // The running trial at its own rate: 19 steps left at 1 s each.
  assert.ok(lines.includes('trials 2/3 finished · 1 done · 1 running · 1 failed · elapsed 0s · sweep ETA 19s'), lines.join('\n'));
});

test('a 100-trial sweep keeps the live region small: only running, a few pending and a count', async () => {
  const { model, ui } = setup();
  const liveHeights: number[] = [];
  for (const e of demoEvents({ trials: 100, steps: 8, concurrency: 2 })) {
    model.apply(e);
    if (e.type === 'trial-start' && model.finished.length % 20 === 0 && model.counts().running === 2) {
      await settle();
      const lines = frameLines(ui.lastFrame()).filter((l) => l !== '');
      const finished = model.finished.length;
      // Every finished trial is one static line, all above the header.
      assert.ok(lines.slice(0, finished).every((l) => /^[✔✘] \[ *\d+\/100\] /.test(l)), lines.join('\n'));
      assert.ok(lines[finished]!.startsWith('moec  sweep demo'));
      liveHeights.push(lines.length - finished);
      assert.ok(lines.some((l) => l === `  … ${100 - finished - 2 - 3} more pending`), lines.join('\n'));
    }
  }
  await settle();
  assert.equal(liveHeights.length, 5);
  // Same height whether 0 or 80 trials are done, and far below a 40-row terminal.
  assert.ok(liveHeights.every((h) => h === liveHeights[0] && h <= 30), String(liveHeights));
  const last = frameLines(ui.lastFrame()).filter((l) => l !== '');
  assert.equal(last.filter((l) => /^[✔✘] \[/.test(l)).length, 100);
  assert.equal(last.filter((l) => l.startsWith('moec  sweep demo')).length, 1);
});

test('names are cut to the terminal width', async () => {
  let clock = 0;
  const model = new SweepModel(() => clock);
  const ui = render(<SweepApp model={model} throttleMs={0} tickMs={0} columns={60} rows={40} />);
  const long = 'unit=sequence top=2 experts=16 capacity=1.25 router=cosine seed=3';
  model.apply(sweepStart([trial('a1', long, 100)]));
  model.apply({ type: 'trial-start', id: 'a1' });
  model.apply(step('a1', 50, 3, 10));
  await settle();
  const lines = frameLines(ui.lastFrame());
  assert.ok(lines.every((l) => [...l].length <= 59), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('▶ unit=seq') && l.includes('…') && l.includes('50/100')), lines.join('\n'));
});

test('fast step events are redrawn at most once per throttle interval', async () => {
  const { model, ui } = setup(100);
  model.apply(sweepStart([trial('a1', 'top=1 unit=token', 1000)]));
  model.apply({ type: 'trial-start', id: 'a1' });
  const before = ui.frames.length;
  for (let s = 1; s <= 1000; s++) model.apply(step('a1', s, 5 - s / 1000, s / 100));
  await sleep(250);
  const redraws = ui.frames.length - before;
  assert.ok(redraws >= 1 && redraws <= 3, `redrew ${redraws} times for 1000 steps`);
  assert.ok(frameLines(ui.lastFrame()).some((l) => l.includes('1000/1000')), 'the trailing redraw shows the last step');
});

test('skipped and stopped trials get their own finished lines', async () => {
  const { model, ui } = setup();
  model.apply(sweepStart([trial('a1', 'top=1 unit=token', 20), trial('b2', 'top=2 unit=sequence', 20)]));
  model.apply({ type: 'trial-end', id: 'a1', status: 'skipped', error: 'finished in an earlier run', wallSeconds: 0 });
  model.apply({ type: 'trial-start', id: 'b2', resumedFrom: 10 });
  model.apply(step('b2', 12, 3, 1));
  model.apply({ type: 'trial-end', id: 'b2', status: 'stopped', wallSeconds: 1 });
  model.apply({ type: 'sweep-end', out: 'runs/ablation' });
  await settle();
  const lines = frameLines(ui.lastFrame());
  assert.match(lines[0]!, /^↷ \[1\/2\] top=1 unit=token +skipped: finished in an earlier run$/);
  assert.match(lines[1]!, /^■ \[2\/2\] top=2 unit=sequence +stopped at 12\/20$/);
  assert.ok(lines.includes('trials 2/2 finished · 0 done · 0 running · 0 failed · 1 skipped · 1 stopped · elapsed 0s'), lines.join('\n'));
  assert.ok(!lines.some((l) => l.includes('  trial ')), 'no table once nothing runs or waits');
});

test('on a narrow terminal finished lines drop tokens/s and loss before cutting names short', async () => {
  let clock = 0;
  const model = new SweepModel(() => clock);
  const ui = render(<SweepApp model={model} throttleMs={0} tickMs={0} columns={80} rows={30} />);
  const name = 'unit=sequence top=2 experts=16 seed=3';
  model.apply(sweepStart([trial('a1', name, 2000)]));
  model.apply({ type: 'trial-start', id: 'a1' });
  model.apply(step('a1', 2000, 2.5, 100));
  model.apply({ type: 'eval', id: 'a1', step: 2000, validLoss: 2.6, validPpl: 13.46 });
  model.apply({ type: 'trial-end', id: 'a1', status: 'done', wallSeconds: 302 });
  await settle();
  const first = frameLines(ui.lastFrame())[0]!;
  // 79 usable columns: without tokens/s and loss, 29 of the 37 name characters still show.
  assert.equal(first, '✔ [1/1] unit=sequence top=2 experts…  2000/2000  val ppl   13.46  wall 5m02s');
});

test('runner messages print above the live region, in order with finished trials', async () => {
  const { model, ui } = setup();
  model.apply(sweepStart([trial('a1', 'top=1 unit=token', 20), trial('b2', 'top=2 unit=sequence', 20)]));
  model.apply({ type: 'trial-start', id: 'a1' });
  model.apply({ type: 'trial-end', id: 'a1', status: 'done', wallSeconds: 1 });
  model.message('Ctrl-C: stopping after the next checkpoint\n(press again to abort)');
  model.apply({ type: 'trial-start', id: 'b2' });
  await settle();
  const lines = frameLines(ui.lastFrame());
  assert.match(lines[0]!, /^✔ \[1\/2\] top=1 unit=token/);
  assert.equal(lines[1], '» Ctrl-C: stopping after the next checkpoint');
  assert.ok(lines[2]!.startsWith('moec  sweep ablation'));
});

test('the cluster task shows test accuracy and samples/s where a language model shows perplexity and tokens/s', async () => {
  let clock = 0;
  const model = new SweepModel(() => clock);
  const ui = render(<SweepApp model={model} throttleMs={0} tickMs={0} columns={120} rows={30} />);
  model.apply(sweepStart([{ ...trial('c1', 'experts=4,expert=mlp,noise=1', 2000), task: 'classification' }]));
  model.apply({ type: 'trial-start', id: 'c1' });
  model.apply(step('c1', 1000, 0.2, 100));
  model.apply({ type: 'eval', id: 'c1', step: 1000, validLoss: 0.1, validPpl: Math.exp(0.1), validAcc: 0.9875 });
  await settle();
  const live = frameLines(ui.lastFrame());
  assert.ok(live.some((l) => /val acc +smp\/s/.test(l)), live.join('\n'));
  assert.ok(live.some((l) => /98\.8%/.test(l)), live.join('\n'));
  model.apply({ type: 'trial-end', id: 'c1', status: 'done', wallSeconds: 8 });
  await settle();
  assert.match(frameLines(ui.lastFrame())[0]!, /val acc +0\.988 .*smp\/s/);
});
