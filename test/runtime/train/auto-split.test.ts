import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { type CompiledTrial, compileTrial } from '../../../compiler/lower/compile.js';
import { splitMessage } from '../../../compiler/lower/fit.js';
import { type DeviceLimits, summarize } from '../../../compiler/lower/summary.js';
import { UserError } from '../../../grammar/user-error.js';
import { compileOrExplain } from '../../../runtime/cli/commands/compile.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { writeWordCorpus } from '../../../runtime/bench/word-corpus.js';
import { prepareSweepData, runSweep } from '../../../runtime/run/sweep.js';
import { RunStore } from '../../../runtime/store/run-store.js';
import type { SweepEvent } from '../../../runtime/train/events.js';
import { readFileSync } from 'node:fs';
import { writeTinyPipeline } from '../../helpers/tiny-pipeline.js';
import { testGpu } from '../../helpers/gpu.js';

// The compiler chooses the micro-batch (compiler/lower/fit.ts compileToFit): a trial whose
// micro-batch of train.batch sequences is over a device's limit runs the largest divisor that fits,
// with accumulate multiplied. A 48 KiB binding limit forces it at a tiny size: the logits of 4
// sequences of 16 tokens over 256 bytes take 64 KiB, those of 2 take 32 KiB. The split plan is the
// plan of the same file with `batch 2  accumulate 2` written by hand, and trains bit for bit as it;
// trials that compute something over the micro-batch are refused naming the values that fit.

const dir = mkdtempSync(path.join(tmpdir(), 'moec-split-'));
const LIMITS: DeviceLimits = { name: 'tiny', maxBufferSize: 2 ** 20, maxStorageBufferBindingSize: 48 * 1024 };

function load(name: string, train: string, moe = '', context = 16) {
  const file = writeTinyPipeline(dir, name, { context, layers: 1, width: 32, heads: 2, moe, train: `  steps 10\n${train}\n  lr 3e-3\n  seed 1` });
  const r = loadPipeline(file);
  assert.ok(r.ok, JSON.stringify(r.diagnostics.map((d) => d.message)));
  assert.equal(r.trials.length, 1);
  return { r, t: r.trials[0]! };
}

/** The plan as data, less its name (the trial id, which differs between the two files). */
const planOf = (c: CompiledTrial) => JSON.stringify({ ...c.plan, name: '' });

test('a micro-batch over a binding limit runs as smaller ones: the plan of the hand-written split, said in the summary, the config holds what runs, the id stays', () => {
  const { r, t } = load('auto', '  batch 4');
  const id = t.id;
  const split = compileOrExplain(r, t, LIMITS);
  assert.deepEqual(split.split && { batch: split.split.batch, accumulate: split.split.accumulate, from: split.split.from }, { batch: 2, accumulate: 2, from: { batch: 4, accumulate: 1 } });
  assert.equal(splitMessage(split.split!), 'batch 4 runs as 2 micro-batches of 2, the same 4 sequences per step, to fit maxStorageBufferBindingSize 48.0 KiB (profile tiny)');
  const s = summarize(split);
  assert.match(s.notes.join('\n'), /batch 4 runs as 2 micro-batches of 2, the same 4 sequences per step, to fit maxStorageBufferBindingSize/);
  assert.deepEqual(s.split?.from, { batch: 4, accumulate: 1 });
  assert.equal(s.tokensPerStep, 4 * 16);
  // What the run stores (config.json), evaluates and resumes with: the micro-batch that runs.
  assert.deepEqual([t.config.train.batch, t.config.train.accumulate], [2, 2]);
  assert.equal(t.id, id);
  // Compiling again (a resume compiles the stored config) changes nothing.
  assert.equal(planOf(compileOrExplain(r, t, LIMITS)), planOf(split));
  const hand = load('hand', '  batch 2\n  accumulate 2');
  const written = compileOrExplain(hand.r, hand.t, LIMITS);
  assert.equal(written.split, undefined, 'a file that fits is compiled as written');
  assert.equal(planOf(written), planOf(split), 'the same plan as the split written by hand');
  // Without the limit, the file as written compiles unsplit.
  const whole = load('whole', '  batch 4');
  assert.equal(compileOrExplain(whole.r, whole.t, { maxBufferSize: 2 ** 28, maxStorageBufferBindingSize: 2 ** 27 }).split, undefined);
  assert.equal(whole.t.config.train.batch, 4);
});

test('the split trains bit for bit as the hand-written split, and as the unsplit batch up to summation order', async () => {
  const a = load('auto2', '  batch 4');
  const b = load('hand2', '  batch 2\n  accumulate 2');
  const unsplit = compileTrial(load('whole2', '  batch 4').t.config, 'whole');
  const plans = [compileOrExplain(a.r, a.t, LIMITS), compileOrExplain(b.r, b.t, LIMITS)];
  // One batch of 4 sequences (a pattern the model learns), as 2 micro-batches of 2 or 1 of 4.
  const n = 4 * 16;
  const tokens = Uint32Array.from({ length: n }, (_, i) => (i * 7 + 3) % 61);
  const targets = Uint32Array.from({ length: n }, (_, i) => ((i + 1) * 7 + 3) % 61);
  const halves = [0, 1].map((h) => ({ tokens: tokens.slice(h * n / 2, (h + 1) * n / 2), targets: targets.slice(h * n / 2, (h + 1) * n / 2) }));
  const run = async (c: CompiledTrial, micro: { tokens: Uint32Array; targets: Uint32Array }[]) => {
    const m = await GpuModel.create(await testGpu(), c);
    try {
      m.initParams(1);
      const losses: number[] = [];
      for (let step = 1; step <= 8; step++) {
        m.trainStep(step, 3e-3, 1, micro);
        losses.push(await m.trainLoss());
      }
      return losses;
    } finally {
      m.destroy();
    }
  };
  const [auto, hand] = [await run(plans[0]!, halves), await run(plans[1]!, halves)];
  assert.deepEqual(auto, hand, 'bit for bit');
  const one = await run(unsplit, [{ tokens, targets }]);
  assert.ok(one.every((l, i) => Math.abs(l - auto[i]!) <= 1e-4 * l), `unsplit ${one.join(' ')}\nsplit   ${auto.join(' ')}`);
  assert.ok(auto.at(-1)! < auto[0]!, 'it learns');
});

const refused = (name: string, train: string, moe: string) => {
  const { r, t } = load(name, train, moe);
  let err: unknown;
  try { compileOrExplain(r, t, LIMITS); } catch (e) { err = e; }
  assert.ok(err instanceof UserError, `${name}: refused`);
  assert.equal(t.config.train.batch, 4, `${name}: the config is left as written`);
  return err.message;
};

test('trials that compute something over the micro-batch are refused, naming train.batch and the micro-batch that fits; the others split', () => {
  const moe = (extra: string) => `    experts 2\n    top 1\n${extra}`;
  const balance = refused('balance', '  batch 4', moe('    capacity dropless\n    balance 0.01'));
  assert.match(balance, /balance\.moe:\d+:\d+ error: .*train\.batch 4 does not fit maxStorageBufferBindingSize .*\(profile tiny\).*micro-batches of 2 would, but this trial computes the balance loss \(model\.moe\.balance 0\.01/);
  assert.match(balance, /hint: set train\.batch 2 and train\.accumulate 2 to train with it over micro-batches of 2 \(the same 4 sequences per step\)/);
  const capacity = refused('capacity', '  batch 4', moe('    capacity 1.25\n    balance 0'));
  assert.match(capacity, /the expert capacity \(model\.moe\.capacity 1\.25/);
  const choice = refused('choice', '  batch 4', moe('    choice expert\n    capacity 1\n    balance 0'));
  assert.match(choice, /expert choice over the micro-batch \(choice-group batch\)/);
  // Dropless token choice without a balance loss, and expert choice within each sequence: the same math.
  for (const [name, m] of [['dropless', moe('    capacity dropless\n    balance 0')], ['per-sequence', moe('    choice expert\n    choice-group sequence\n    capacity 1\n    balance 0')]] as const) {
    const { r, t } = load(name, '  batch 4', m);
    const c = compileOrExplain(r, t, LIMITS);
    assert.deepEqual([c.split?.batch, c.split?.accumulate, t.config.train.batch], [2, 2, 2], name);
  }
});

test('a trial that does not fit even at batch 1 is refused, saying so, at train.batch', () => {
  // 256 tokens' logits over 256 bytes take 256 KiB, the parameters fit.
  const { r, t } = load('one', '  batch 4', '', 256);
  let err: unknown;
  try { compileOrExplain(r, t, LIMITS); } catch (e) { err = e; }
  assert.ok(err instanceof UserError);
  assert.match(err.message, /one\.moe:14:\d+ error: .*even at train\.batch 1 \(micro-batches of one sequence\), buffer '.*' needs .* over the device's maxStorageBufferBindingSize .*\(profile tiny\)/);
  assert.doesNotMatch(err.message, /\n\s+at /);
});

test('moec run with the split: said at the trial start, config.json holds what ran, the losses equal the hand-written split\'s bit for bit, and --resume takes it', async () => {
  writeWordCorpus(path.join(dir, 'data'), { vocab: 34, seed: 11, docs: 8, words: 300 });
  const text = (train: string) => `
data docs { source folder "data"; label topic; tokenizer bytes; context 16; valid 20% }
model m { layers 1; width 16; heads 2; ffn 2x }
train { steps 4; ${train}; lr 3e-3; warmup 1 }
evaluate { every 2; batches 1 }
`;
  const sweep = async (name: string, train: string, resume = false) => {
    const file = path.join(dir, `${name}.moe`);
    writeFileSync(file, text(train));
    const r = loadPipeline(file);
    assert.ok(r.ok, JSON.stringify(r.diagnostics));
    const t = r.trials[0]!;
    const compiled = new Map([[t.id, compileOrExplain(r, t, LIMITS)]]);
    const events: SweepEvent[] = [];
    const out = path.join(dir, 'runs');
    const res = await runSweep({ file, load: r, trials: r.trials, compiled, gpu: await testGpu(), out, resume, force: false, listener: (e) => events.push(e), stop: { requested: false }, data: await prepareSweepData(r.trials, () => {}) });
    const ts = RunStore.open(path.join(out, name)).trial(t.id);
    const losses = readFileSync(path.join(ts.dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'train').map((m) => m.loss);
    return { res, t, events, ts, losses };
  };
  const auto = await sweep('auto-run', 'batch 4');
  assert.equal(auto.res.done, 1);
  const start = auto.events.find((e) => e.type === 'trial-start') as Extract<SweepEvent, { type: 'trial-start' }>;
  assert.match(start.note ?? '', /^batch 4 runs as 2 micro-batches of 2, the same 4 sequences per step, to fit maxStorageBufferBindingSize 48\.0 KiB \(profile tiny\)/);
  const stored = auto.ts.readConfig()!;
  assert.equal(stored.id, auto.t.id);
  assert.deepEqual([stored.config.train.batch, stored.config.train.accumulate], [2, 2]);
  const plan = JSON.parse(readFileSync(path.join(auto.ts.dir, 'plan.json'), 'utf8'));
  assert.deepEqual(plan.split.from, { batch: 4, accumulate: 1 });
  const hand = await sweep('hand-run', 'batch 2; accumulate 2');
  assert.ok(auto.losses.length >= 2);
  assert.deepEqual(auto.losses, hand.losses, 'the same losses, bit for bit');
  // Resumed, the file compiles to the same split: the stored config matches, the trial is done.
  const again = await sweep('auto-run', 'batch 4', true);
  assert.equal(again.res.failed, 0);
  assert.equal(again.res.skipped, 1);
});
