import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { lsCommand } from '../../../runtime/cli/commands/ls.js';
import { reportCommand } from '../../../runtime/cli/commands/report.js';
import { showCommand } from '../../../runtime/cli/commands/show.js';
import { main } from '../../../runtime/cli/main.js';
import { writeReport } from '../../../runtime/report/report.js';
import { RunStore } from '../../../runtime/store/run-store.js';
import { fakeTrials, writeFakeSweep } from '../store/fake-sweep.js';

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  try {
    return { code: await fn(), out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const store = writeFakeSweep();
const root = path.dirname(store.dir);
const ids = store.index.trials.map((t) => t.id);

test('moec ls: every sweep and trial with status, steps and last perplexity', async () => {
  const r = await capture(() => lsCommand.run([root]));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^fake {2}.*fake\.moe, llvmpipe \(LLVM 19\)/m);
  assert.match(r.out, /6 trials: 5 done, 1 failed/);
  assert.match(r.out, new RegExp(`${ids[0]} +top=1,seed=1 +done +40/40 +12\\.00`));
  assert.match(r.out, /top=3,seed=2 +failed +20\/40 +36\.00/);
  const j = await capture(() => lsCommand.run([root, '--json']));
  const runs = JSON.parse(j.out) as { sweep: string; trials: { status: string }[] }[];
  assert.equal(runs[0]!.sweep, 'fake');
  assert.equal(runs[0]!.trials.filter((t) => t.status === 'failed').length, 1);
  const missing = await capture(() => main(['ls', path.join(root, 'nope')]));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /nope: error: no such runs directory/);
});

test('moec show: config, status, last metrics and checkpoints of a trial found by id prefix', async () => {
  const failed = store.index.trials.find((t) => t.name === 'top=3,seed=2')!;
  const r = await capture(() => showCommand.run([failed.id.slice(0, 6), '--runs', root]));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`^trial ${failed.id} {2}top=3,seed=2`));
  assert.match(r.out, /status +failed, step 20\/40/);
  assert.match(r.out, /error +GPU device lost: out of memory/);
  assert.match(r.out, /MoE layers \[0, 1\]: 4 experts, top 3/);
  assert.match(r.out, /last eval +step 20: valid loss 3\.5835, ppl 36\.00 \(mean of last 2: 36\.50; 2 evals\)/);
  assert.match(r.out, /checkpoint +step 10 .*step-10\.safetensors\n.*checkpoint +step 20 .*step-20\.safetensors/);
  const bySweep = await capture(() => showCommand.run([`fake/${ids[0]}`, '--runs', root, '--json']));
  assert.equal(JSON.parse(bySweep.out).trial.id, ids[0]);
  const none = await capture(() => main(['show', 'ffffffffff', '--runs', root]));
  assert.equal(none.code, 1);
  assert.match(none.err, /no trial 'ffffffffff'/);
  assert.doesNotMatch(none.err, /\n\s+at /, 'no stack trace');
});

test('moec report: writes the report into the run; a runs root is refused with the runs it holds', async () => {
  const r = await capture(() => reportCommand.run([store.dir]));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /6 trials \(5 done\) in 3 configurations/);
  assert.ok(existsSync(path.join(store.dir, 'report.md')));
  assert.ok(existsSync(path.join(store.dir, 'figures', 'perplexity.png')));
  const wrong = await capture(() => main(['report', root]));
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /not a run itself: it holds 1 run\n {2}hint: name one: .*fake/);
});

test('report of a run whose trials have not started says so, with no figures', async () => {
  const { file, trials } = fakeTrials();
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'moec-empty-')), 'fresh');
  RunStore.create(dir, { sweep: 'fresh', file, preset: null, adapter: 'x', trials: trials.map((t) => ({ id: t.id, name: t.name })) });
  const r = await writeReport(dir);
  assert.equal(r.files.figures.length, 0);
  assert.deepEqual(r.groups.map((g) => [g.seeds, g.done, g.unfinished, g.ppl_last.mean]), [[2, 0, 2, null], [2, 0, 2, null], [2, 0, 2, null]]);
  const ls = await capture(() => lsCommand.run([dir]));
  assert.match(ls.out, /6 trials: 6 pending/);
});
