// The live view at the widths people use (80 and 160 columns), taken from real tmux screens of a
// quickstart sweep: what matters on a line (the wall time, the sweep ETA, where the run goes, the
// router's statistics) must survive an 80-column terminal, and a wide one must not pad names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SweepModel } from '../../../runtime/ui/sweep-model.js';
import { finishedLayout, finishedLine, headerLines, lineText, liveLines, moeStatsText, shortAdapter } from '../../../runtime/ui/screen-lines.js';
import { step, trial } from './helpers.js';

const adapter = 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1 (mesa, vulkan, software)';
function quickstart(clock: { t: number }): SweepModel {
  const m = new SweepModel(() => clock.t);
  m.apply({ type: 'sweep-start', sweep: 'quickstart-small', adapter, out: '/tmp/runs/quickstart-small', trials: [trial('a1', 'top=1', 60), trial('b2', 'top=2', 60)] });
  m.apply({ type: 'trial-start', id: 'a1' });
  clock.t += 15_000;
  m.apply({ ...step('a1', 60, 3.0631, 15), moe: { balance: [1.02, 1.0], z: [2.5, 2.6], dropped: [0, 0] } } as never);
  m.apply({ type: 'trial-end', id: 'a1', status: 'done', wallSeconds: 15.2 });
  m.apply({ type: 'trial-start', id: 'b2' });
  clock.t += 5_000;
  m.apply({ ...step('b2', 20, 3.5, 5), moe: { balance: [1.0, 1.01], z: [1.9, 2.0], dropped: [0.01, 0.02] } } as never);
  return m;
}

test('at 80 columns a finished line keeps its wall time and every field fits', () => {
  const m = quickstart({ t: 0 });
  const t = m.trials[0]!;
  const line = lineText(finishedLine(t, 2, 80, finishedLayout(m, 80)));
  assert.ok(line.length <= 80, line);
  assert.match(line, /^✔ \[1\/2\] top=1 +60\/60  loss 3\.0631  val ppl +- +\S+ tok\/s  wall 15s$/, line);
});

test('at 80 columns the header keeps the sweep ETA and the output folder; zero counts and driver details give way', () => {
  const m = quickstart({ t: 0 });
  const [first, tally] = headerLines(m, 80).map(lineText);
  assert.equal(first, 'moec  sweep quickstart-small · llvmpipe · out /tmp/runs/quickstart-small');
  assert.match(tally!, /^trials 1\/2 finished · 1 done · 1 running · elapsed 20s · sweep ETA \d+s$/, tally);
  // Wide enough, nothing is dropped.
  const [wide, wideTally] = headerLines(m, 160).map(lineText);
  assert.equal(wide, `moec  sweep quickstart-small · ${adapter} · out /tmp/runs/quickstart-small`);
  assert.match(wideTally!, /· 1 running · 0 failed · elapsed 20s · sweep ETA/);
  assert.equal(shortAdapter('NVIDIA H100 (Vulkan)'), 'NVIDIA H100');
  assert.equal(shortAdapter('llvmpipe'), 'llvmpipe');
});

test("at 80 columns the router's statistics take their short form instead of being cut", () => {
  const m = quickstart({ t: 0 });
  const live = liveLines(m, { width: 80, rows: 40 }).map(lineText);
  for (const l of live) assert.ok(l.length <= 80, l);
  const stats = live.find((l) => l.startsWith('  balance'))!;
  assert.equal(stats, '  balance 1.005 · z 1.950 · dropped 1.5% (worst 2.0%) · 2-layer mean');
  assert.ok(!live.some((l) => l.endsWith('…')), live.join('\n'));
  assert.equal(moeStatsText({ balance: [1], z: [2], dropped: [0] }), 'balance loss 1.000 · z loss 2.000 · dropped 0.0% (worst layer 0.0%)');
});

test('at 160 columns the name column is as wide as the longest name, not the whole spare width', () => {
  const m = quickstart({ t: 0 });
  const live = liveLines(m, { width: 160, rows: 40 }).map(lineText);
  const head = live.find((l) => l.includes('progress'))!;
  const row = live.find((l) => l.startsWith('▶ top=2'))!;
  // The names are shorter than the column's minimum of 8: the bar starts right after it.
  assert.equal(head.indexOf('progress'), 2 + 8 + 1, head);
  assert.match(row, /^▶ top=2    [^ ]{20} 20\/60 /, row);
});
