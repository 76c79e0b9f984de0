// The live view's per-layer load line (overload factor, dead experts) and the router-collapse
// warning at the share the user sets; the log view prints the warning once when it starts.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { render, cleanup } from 'ink-testing-library';
import { SweepApp } from '../../../runtime/ui/app.js';
import { SweepModel } from '../../../runtime/ui/sweep-model.js';
import { createLogView } from '../../../runtime/ui/log-view.js';
import type { LayerLoad, SweepEvent } from '../../../runtime/train/events.js';
import { Capture, plainText, sweepStart, trial } from './helpers.js';

afterEach(() => cleanup());

const settle = () => new Promise((resolve) => setImmediate(resolve));

const stepWith = (s: number, load: LayerLoad[]): SweepEvent => ({ type: 'step', id: 'a1', step: s, loss: 3, total: 3.02, aux: { balance: 0.02, z: 0 }, lr: 6e-4, tokensPerSec: 1000, elapsed: s, load });
// Top 1 of 4 experts: a balanced layer gives each expert a quarter of the tokens.
const layer = (l: number, overload: number, dead: number, maxShare: number): LayerLoad => ({ layer: l, overload, dead, maxShare, fairShare: 0.25 });

function view(collapseShare?: number) {
  const model = new SweepModel(() => 0);
  if (collapseShare !== undefined) model.collapseShare = collapseShare;
  const ui = render(<SweepApp model={model} throttleMs={0} tickMs={0} columns={120} rows={40} />);
  model.apply(sweepStart([trial('a1', 'top=1', 40)]));
  model.apply({ type: 'trial-start', id: 'a1' });
  return { model, lines: async () => { await settle(); return plainText(ui.lastFrame() ?? '').split('\n'); } };
}

test('the live view shows each layer’s overload factor and dead experts, and no warning while balanced', async () => {
  const v = view();
  v.model.apply(stepWith(1, [layer(0, 1.12, 0, 0.28), layer(1, 1.4, 0, 0.35)]));
  const lines = await v.lines();
  assert.ok(lines.includes('  load (max/mean, dead): L0 ×1.12 0 dead · L1 ×1.40 0 dead'), lines.join('\n'));
  assert.ok(!lines.some((l) => l.includes('collapse')), lines.join('\n'));
});

test('one expert above the share the user set warns of a collapse, and the warning clears with the load', async () => {
  const v = view(0.6);
  v.model.apply(stepWith(1, [layer(0, 2.6, 0, 0.65), layer(1, 1.1, 0, 0.27)]));
  let lines = await v.lines();
  assert.ok(lines.includes('  ⚠ router collapse: L0 one expert took 65% of tokens (> 60%)'), lines.join('\n'));
  // Below the share: no warning (the default 0.5 would have warned at 0.55).
  v.model.apply(stepWith(2, [layer(0, 2.2, 0, 0.55), layer(1, 1.1, 0, 0.27)]));
  lines = await v.lines();
  assert.ok(!lines.some((l) => l.includes('collapse')), lines.join('\n'));
});

test('dead experts warn whatever the share', async () => {
  const v = view(0.9);
  v.model.apply(stepWith(1, [layer(0, 1.3, 0, 0.3), layer(1, 1.9, 2, 0.45)]));
  const lines = await v.lines();
  assert.ok(lines.includes('  load (max/mean, dead): L0 ×1.30 0 dead · L1 ×1.90 2 dead'), lines.join('\n'));
  assert.ok(lines.includes('  ⚠ router collapse: L1 2 dead experts'), lines.join('\n'));
});

test('a share at or below the balanced one flags nothing but dead experts', async () => {
  const v = view(0.2);
  v.model.apply(stepWith(1, [layer(0, 1.1, 0, 0.27)]));
  assert.ok(!(await v.lines()).some((l) => l.includes('collapse')));
});

test('the log view prints the LM loss, its perplexity and the total, and the collapse warning once when it starts', () => {
  const out = new Capture();
  const log = createLogView({ stdout: out, everySteps: 1, collapseShare: 0.5 });
  log.listener(sweepStart([trial('a1', 'top=1', 40)]));
  log.listener({ type: 'trial-start', id: 'a1' });
  log.listener(stepWith(1, [layer(0, 3.2, 1, 0.8)]));
  log.listener(stepWith(2, [layer(0, 3.2, 1, 0.8)]));
  log.listener(stepWith(3, [layer(0, 1.0, 0, 0.25)]));
  const lines = out.lines();
  assert.equal(lines.filter((l) => l.includes(' warn ')).length, 1, lines.join('\n'));
  assert.ok(lines.some((l) => l === '[1/1] warn    a1 1/40 router collapse: L0 one expert took 80% of tokens (> 50%), 1 dead expert'), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('[1/1] step    a1 1/40 loss 3.0000 ppl 20.09 total 3.0200 load L0 ×3.20 1 dead tok/s')), lines.join('\n'));
});
