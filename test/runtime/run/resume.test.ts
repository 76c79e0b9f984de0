import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeWordCorpus } from '../../../runtime/bench/word-corpus.js';

// `moec run` end to end on a user folder of text files (no network), then kill -9 in the middle of
// a second run and --resume it: the losses after the checkpoint must equal the uninterrupted run's.

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

function corpus(dir: string): void {
  writeWordCorpus(dir, { vocab: 72, seed: 7, docs: 15, words: 300 });
}

const pipeline = (data: string) => `
data docs {
  source folder "${data}"
  label topic
  tokenizer bytes
  context 32
  valid 20%
}
model m { layers 1; width 32; heads 2; ffn 2x; dropout 0.1 }
train { steps 24; batch 4; lr 3e-3; warmup 2; seed 5 }
evaluate { every 6; batches 2 }
`;

function trainLosses(runDir: string): Map<number, number> {
  const trial = readdirSync(runDir).find((d) => existsSync(path.join(runDir, d, 'metrics.jsonl')))!;
  const lines = readFileSync(path.join(runDir, trial, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return new Map(lines.filter((m) => m.kind === 'train').map((m) => [m.step, m.loss]));
}

/**
 * Runs `text` uninterrupted, then again killed with SIGKILL once the checkpoint at `killStep` exists,
 * then --resume (with `resumeArgs`); returns the uninterrupted and resumed losses and the resume's output.
 */
async function killAndResume(name: string, text: (dir: string) => string, killStep: number, resumeArgs: string[] = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-resume-'));
  corpus(path.join(dir, 'data'));
  const file = path.join(dir, `${name}.moe`);
  writeFileSync(file, text(path.join(dir, 'data')));
  const env = { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1' };
  const run = (out: string, extra: string[] = []) => spawnSync(process.execPath, [moec, 'run', file, '--out', out, ...extra], { cwd: dir, env, encoding: 'utf8' });

  const full = run(path.join(dir, 'a'));
  assert.equal(full.status, 0, full.stderr);
  assert.match(full.stdout, /1 done, 0 failed/);
  const reference = trainLosses(path.join(dir, 'a', name));

  const out = path.join(dir, 'b');
  const child = spawn(process.execPath, [moec, 'run', file, '--out', out], { cwd: dir, env, stdio: 'ignore' });
  const killed = await new Promise<boolean>((resolve) => {
    const poll = setInterval(() => {
      const runDir = path.join(out, name);
      const trial = existsSync(runDir) ? readdirSync(runDir).find((d) => existsSync(path.join(runDir, d, 'checkpoints', `step-${killStep}.safetensors`))) : undefined;
      if (trial) {
        clearInterval(poll);
        child.kill('SIGKILL');
        resolve(true);
      }
    }, 20);
    child.on('exit', () => { clearInterval(poll); resolve(false); });
  });
  assert.ok(killed, 'the run finished before it could be killed; make it longer');
  await new Promise((r) => child.on('exit', r));
  const resumed = run(out, ['--resume', ...resumeArgs]);
  assert.equal(resumed.status, 0, resumed.stderr);
  const after = trainLosses(path.join(out, name));
  assert.deepEqual([...after.keys()], [...reference.keys()], 'metrics.jsonl must hold each logged step once');
  const runDir = path.join(out, name);
  const trialDir = path.join(runDir, readdirSync(runDir).find((d) => existsSync(path.join(runDir, d, 'metrics.jsonl')))!);
  return { reference, after, stdout: resumed.stdout, runDir, trialDir };
}

function assertSameLosses(reference: Map<number, number>, after: Map<number, number>): void {
  for (const [step, loss] of reference) assert.equal(after.get(step), loss, `step ${step}`);
}

test('a run killed with SIGKILL resumes from its checkpoint with the same losses as an uninterrupted run', async () => {
  const r = await killAndResume('resume', pipeline, 12);
  assertSameLosses(r.reference, r.after);
  assert.ok(!existsSync(path.join(r.trialDir, 'resumes.jsonl')), 'a resume on the same kernels records nothing');
});

test('a resume on other kernels (--portable after the subgroup lowering) is said, recorded and reported', async (t) => {
  const r = await killAndResume('kernels', pipeline, 12, ['--portable']);
  const plan = JSON.parse(readFileSync(path.join(r.trialDir, 'plan.json'), 'utf8')) as { lowering: string[] };
  const first = JSON.parse(readFileSync(path.join(r.runDir, '..', '..', 'a', 'kernels', path.basename(r.trialDir), 'plan.json'), 'utf8')) as { lowering: string[] };
  if (!first.lowering.length) {
    t.skip('this adapter lowers portably anyway (no subgroups of at least 8), so --portable changes nothing');
    return;
  }
  assert.deepEqual(plan.lowering, [], 'the resumed plan is portable');
  assert.match(r.stdout, /resumed with other kernels \(lowering subgroupMatmul -> portable\)/);
  const rec = readFileSync(path.join(r.trialDir, 'resumes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rec.length, 1);
  assert.equal(rec[0].step, 12);
  assert.equal(rec[0].lowering, 'portable');
  assert.match(readFileSync(path.join(r.runDir, 'report.md'), 'utf8'), /Resumed on other kernels:.*at step 12: portable/);
  // Up to the checkpoint the losses are the uninterrupted run's; after it, other kernels, close but not bit-equal.
  for (const [step, loss] of r.reference) {
    if (step <= 12) assert.equal(r.after.get(step), loss, `step ${step}`);
    else assert.ok(Math.abs(r.after.get(step)! - loss) < 1e-3 * Math.abs(loss), `step ${step}: ${r.after.get(step)} vs ${loss}`);
  }
});

// NGD (Chen et al.'s optimizer) keeps no state beyond the step either: the weights alone resume it.
for (const [name, train] of [['SGD', 'optimizer sgd; lr 0.1'], ['NGD', 'optimizer ngd; lr 0.01; clip 0']] as const) {
  test(`the cluster task (patch model, ${name}, router noise) killed with SIGKILL resumes with the same losses`, async () => {
    const r = await killAndResume(`clusters-${name.toLowerCase()}`, () => `
data blobs {
  source clusters
  valid 20%
  synthetic { clusters 3; patches 3; dim 10; noise 0.1; feature [0.5, 2]; distractor [0.5, 2]; samples 2000 }
}
model p { ffn 6; moe { experts 3; top 1; noise 1; noise-dist uniform; balance 0.01; expert mlp; activation cubic } }
train { steps 1500; batch 16; ${train}; schedule cosine; seed 3 }
evaluate { every 500; batches 4; experts blobs.valid by cluster }
`, 500);
    assertSameLosses(r.reference, r.after);
  });
}

test('a run stored under the ids of an older moec (keys since added at their defaults) is resumed, not run again beside it', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-oldids-'));
  corpus(path.join(dir, 'data'));
  const file = path.join(dir, 'old.moe');
  writeFileSync(file, pipeline(path.join(dir, 'data')).replace('steps 24', 'steps 6'));
  const env = { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1' };
  const run = (extra: string[]) => spawnSync(process.execPath, [moec, 'run', file, '--out', path.join(dir, 'runs'), ...extra], { cwd: dir, env, encoding: 'utf8' });
  const first = run([]);
  assert.equal(first.status, 0, first.stderr);
  const runDir = path.join(dir, 'runs', 'old');
  const index = JSON.parse(readFileSync(path.join(runDir, 'index.json'), 'utf8'));
  const id: string = index.trials[0].id;
  // As an older moec wrote it: no keys that came later, and an id hashed from everything.
  const oldId = 'aaaaaaaaaa';
  const config = JSON.parse(readFileSync(path.join(runDir, id, 'config.json'), 'utf8'));
  delete config.config.train.sample;
  delete config.config.train.balanceBy;
  config.id = oldId;
  writeFileSync(path.join(runDir, id, 'config.json'), JSON.stringify(config));
  renameSync(path.join(runDir, id), path.join(runDir, oldId));
  index.trials[0].id = oldId;
  writeFileSync(path.join(runDir, 'index.json'), JSON.stringify(index));
  const losses = trainLosses(runDir);

  const again = run(['--resume']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /0 done, 0 failed.*1 skipped|1 skipped/);
  const after = JSON.parse(readFileSync(path.join(runDir, 'index.json'), 'utf8'));
  assert.deepEqual(after.trials.map((t: { id: string }) => t.id), [id], 'one trial, under its current id');
  assert.ok(!existsSync(path.join(runDir, oldId)));
  assert.deepEqual(trainLosses(runDir), losses, 'its metrics moved with it');
  assert.equal(JSON.parse(readFileSync(path.join(runDir, id, 'config.json'), 'utf8')).id, id);
});

test('--parallel 2 trains two trials at once with the same losses as one after the other', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-parallel-'));
  corpus(path.join(dir, 'data'));
  const file = path.join(dir, 'par.moe');
  writeFileSync(file, `${pipeline(path.join(dir, 'data')).replace('steps 24', 'steps 8')}\nsweep { seeds 2 }\n`);
  const env = { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1' };
  const run = (out: string, extra: string[]) => spawnSync(process.execPath, [moec, 'run', file, '--out', out, ...extra], { cwd: dir, env, encoding: 'utf8' });
  const one = run(path.join(dir, 'one'), []);
  const two = run(path.join(dir, 'two'), ['--parallel', '2']);
  assert.equal(one.status, 0, one.stderr);
  assert.equal(two.status, 0, two.stderr);
  assert.match(two.stdout, /2 done, 0 failed/);
  for (const trial of readdirSync(path.join(dir, 'one', 'par')).filter((d) => existsSync(path.join(dir, 'one', 'par', d, 'metrics.jsonl')))) {
    const losses = (root: string) => readFileSync(path.join(root, 'par', trial, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((m) => m.loss ?? m.valid_loss);
    assert.deepEqual(losses(path.join(dir, 'two')), losses(path.join(dir, 'one')), trial);
  }
});
