import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeWordCorpus } from '../../../runtime/bench/word-corpus.js';

// Real `moec run` processes on one sweep directory: a second run (or --resume) is refused while the
// first holds the sweep, naming it; SIGTERM stops a run like Ctrl-C; --only --force reruns only
// what it selects. Nothing is duplicated in metrics.jsonl.

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

function corpus(dir: string): void {
  writeWordCorpus(dir, { vocab: 34, seed: 11, docs: 8, words: 200 });
}

function setup(steps: number, train = '', seeds = 2) {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-safety-'));
  corpus(path.join(dir, 'data'));
  const file = path.join(dir, 'safe.moe');
  writeFileSync(file, `
data docs { source folder "${path.join(dir, 'data')}"; label topic; tokenizer bytes; context 16; valid 20% }
model m { layers 1; width 16; heads 2; ffn 2x }
train { steps ${steps}; batch 2; lr 3e-3; warmup 2; seed 5${train} }
evaluate { every 5; batches 1 }
sweep { seeds ${seeds} }
`);
  const env = { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1' };
  const out = path.join(dir, 'runs');
  const runDir = path.join(out, 'safe');
  const args = (extra: string[]) => [moec, 'run', file, '--out', out, ...extra];
  return {
    dir, runDir,
    run: (extra: string[] = []) => spawnSync(process.execPath, args(extra), { cwd: dir, env, encoding: 'utf8' }),
    runAsync: (extra: string[] = []) => new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, args(extra), { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('exit', (status) => resolve({ status, stderr }));
    }),
    start: (extra: string[] = []) => {
      const child = spawn(process.execPath, args(extra), { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
      const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      return { child, exited, output: () => output };
    },
  };
}

/** Polls until `cond` holds (or the child exits: then fails with its output). */
async function until(cond: () => boolean, c: { exited: Promise<number | null>; output: () => string }, what: string): Promise<void> {
  let done = false;
  void c.exited.then(() => { done = true; });
  while (!cond()) {
    if (done) assert.fail(`the run exited before ${what}:\n${c.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const trialDirs = (runDir: string) => readdirSync(runDir).filter((d) => existsSync(path.join(runDir, d, 'config.json'))).map((d) => path.join(runDir, d));
const checkpointed = (runDir: string) => existsSync(runDir) && trialDirs(runDir).some((d) => existsSync(path.join(d, 'checkpoints')) && readdirSync(path.join(d, 'checkpoints')).some((n) => n.endsWith('.safetensors')));

function assertNoDuplicates(runDir: string): void {
  for (const d of trialDirs(runDir)) {
    const lines = readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number });
    for (const kind of ['train', 'eval']) {
      const steps = lines.filter((m) => m.kind === kind).map((m) => m.step);
      assert.deepEqual(steps, [...new Set(steps)].sort((a, b) => a - b), `${d}: ${kind} steps once each, in order`);
    }
  }
}

function lockPid(runDir: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(runDir, '.lock'), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

function holderRefused(r: { status: number | null; stderr: string }, pid: number | undefined): void {
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`\\.lock: error: locked by pid ${pid} on \\S+ since \\S+ \\(moec run \\(the whole sweep\\): node \\S+moec\\.js run`));
  assert.match(r.stderr, /hint: another moec run is writing this sweep/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('two moec run (and two --resume) on one sweep: the second is refused naming the first; SIGTERM stops like Ctrl-C', async () => {
  const s = setup(5000);
  const a = s.start();
  await until(() => checkpointed(s.runDir), a, 'its first checkpoint');
  const [fresh, resume] = await Promise.all([s.runAsync(), s.runAsync(['--resume'])]);
  holderRefused(fresh, a.child.pid);
  holderRefused(resume, a.child.pid);
  a.child.kill('SIGTERM');
  assert.equal(await a.exited, 1, a.output());
  assert.match(a.output(), /SIGTERM: stopping after this step/);
  assert.match(a.output(), /0 done, 0 failed, 1 stopped/);
  const stoppedAt = assertStopped(s.runDir);

  // The same for two --resume: the second is refused while the first trains on.
  const c = s.start(['--resume']);
  await until(() => lockPid(s.runDir) === c.child.pid && trainedPast(s.runDir, stoppedAt), c, 'resuming past the checkpoint');
  holderRefused(await s.runAsync(['--resume']), c.child.pid);
  c.child.kill('SIGTERM');
  assert.equal(await c.exited, 1, c.output());
  assert.match(c.output(), /resumed from|resum/i);
  assert.ok(assertStopped(s.runDir) > stoppedAt);
  assertNoDuplicates(s.runDir);
});

/** The trial stopped cleanly: status.json and index.json say so, the lock is gone, a checkpoint is at its step. Returns the step. */
function assertStopped(runDir: string): number {
  const stopped = trialDirs(runDir).map((d) => JSON.parse(readFileSync(path.join(d, 'status.json'), 'utf8')) as { state: string; step: number });
  assert.deepEqual(stopped.map((x) => x.state), ['stopped'], 'status.json says stopped, not running');
  const index = JSON.parse(readFileSync(path.join(runDir, 'index.json'), 'utf8')) as { trials: { status: string }[] };
  assert.deepEqual(index.trials.map((t) => t.status), ['stopped', 'pending']);
  assert.equal(existsSync(path.join(runDir, '.lock')), false, 'the sweep lock is released');
  const trial = trialDirs(runDir)[0]!;
  assert.equal(existsSync(path.join(trial, '.lock')), false, 'the trial lock is released');
  const ckpts = readdirSync(path.join(trial, 'checkpoints'));
  assert.ok(ckpts.includes(`step-${stopped[0]!.step}.safetensors`), `a checkpoint at the stopping step ${stopped[0]!.step}: ${ckpts}`);
  return stopped[0]!.step;
}

function trainedPast(runDir: string, step: number): boolean {
  const d = trialDirs(runDir)[0];
  if (!d || !existsSync(path.join(d, 'metrics.jsonl'))) return false;
  return readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').some((l) => l && (JSON.parse(l) as { step: number }).step > step + 5);
}

test('--only PATTERN --force removes and reruns only the matching trials, and says so', () => {
  const s = setup(10);
  const first = s.run();
  assert.equal(first.status, 0, first.stderr);
  const index = JSON.parse(readFileSync(path.join(s.runDir, 'index.json'), 'utf8')) as { trials: { id: string; name: string }[] };
  const [one, two] = index.trials;
  assert.ok(one && two && /seed=1/.test(one.name) && /seed=2/.test(two.name), JSON.stringify(index.trials));
  const kept = readFileSync(path.join(s.runDir, two.id, 'metrics.jsonl'), 'utf8');
  const keptTime = statSync(path.join(s.runDir, two.id, 'status.json')).mtimeMs;
  const again = s.run(['--only', 'seed=1', '--force']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout + again.stderr, /--force: removed the records of 1 trial to run again: [^\n]*seed=1[^\n]*\(the other 1 keep theirs\)/);
  assert.match(again.stdout, /1 done, 0 failed/);
  assert.equal(readFileSync(path.join(s.runDir, two.id, 'metrics.jsonl'), 'utf8'), kept, 'the trial --only excluded keeps its records');
  assert.equal(statSync(path.join(s.runDir, two.id, 'status.json')).mtimeMs, keptTime);
  const after = JSON.parse(readFileSync(path.join(s.runDir, 'index.json'), 'utf8')) as { trials: { id: string; status: string }[] };
  assert.deepEqual(after.trials.map((t) => t.status), ['done', 'done']);
  assertNoDuplicates(s.runDir);
});


test('--resume --steps 20 after --steps 10 continues to 20 when the schedule allows, else names the key and the command', () => {
  const constant = setup(10, '; schedule constant', 1);
  assert.equal(constant.run(['--steps', '10']).status, 0);
  const longer = constant.run(['--resume', '--steps', '20']);
  assert.equal(longer.status, 0, longer.stderr);
  assert.match(longer.stdout + longer.stderr, /--resume: trial seed=1 \(\w+\): train\.steps 10 -> 20: continuing from step 10 to 20/);
  assert.match(longer.stdout, /1 done, 0 failed/);
  for (const d of trialDirs(constant.runDir)) assert.equal(JSON.parse(readFileSync(path.join(d, 'status.json'), 'utf8')).step, 20);
  assertNoDuplicates(constant.runDir);

  // Cosine: the first 10 steps' learning rate depends on the total, so continuing is refused, with the commands.
  const cosine = setup(30, '', 1);
  assert.equal(cosine.run(['--steps', '10']).status, 0);
  const refused = cosine.run(['--resume', '--steps', '20']);
  assert.equal(refused.status, 1, refused.stdout);
  assert.match(refused.stderr, /error: --resume: 1 trial was run with other settings: seed=1 \(\w+\): train\.steps 10 -> 20 \(the learning-rate schedule/);
  assert.match(refused.stderr, /hint: continue as they were run: moec run \S+safe\.moe (--out \S+ )?--resume --steps 10; or train it again from scratch with the new settings: moec run \S+ --only \w+ --force --steps 20/);
  // Resuming without the original --steps says the same, instead of a bare "different configuration".
  const plain = cosine.run(['--resume']);
  assert.equal(plain.status, 1);
  assert.match(plain.stderr, /seed=1 \(\w+\): train\.steps 10 -> 30 /);
});

test('--force does not delete a trial another process is training (its trial lock is held)', async () => {
  const s = setup(5, '', 1);
  assert.equal(s.run().status, 0);
  const trial = trialDirs(s.runDir)[0]!;
  const before = readFileSync(path.join(trial, 'metrics.jsonl'), 'utf8');
  const lockModule = path.resolve(path.dirname(moec), '../store/lock.js');
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `import { acquireLock } from ${JSON.stringify(lockModule)}; acquireLock(${JSON.stringify(path.join(trial, '.lock'))}, 'train trial (a queue worker)'); process.stdout.write('held'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
  try {
    const r = await s.runAsync(['--force']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${path.basename(trial)}/\\.lock: error: locked by pid ${holder.pid} on \\S+ since \\S+ \\(train trial \\(a queue worker\\)`));
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  } finally {
    holder.kill('SIGTERM');
  }
  assert.equal(readFileSync(path.join(trial, 'metrics.jsonl'), 'utf8'), before, 'the trial kept its records');
});

test('every checkpoint of one trial damaged: --resume fails that trial, says why and what to run, and trains the others on', () => {
  const s = setup(6, '; schedule constant', 2);
  assert.equal(s.run(['--steps', '6']).status, 0);
  const [bad, good] = trialDirs(s.runDir) as [string, string];
  const cks = readdirSync(path.join(bad, 'checkpoints')).filter((n) => n.endsWith('.safetensors'));
  assert.ok(cks.length >= 1, 'the first run left checkpoints');
  for (const n of cks) {
    // One flipped byte in the tensor data: its checksum no longer holds.
    const f = path.join(bad, 'checkpoints', n);
    const bytes = readFileSync(f);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(f, bytes);
  }
  const r = s.run(['--resume', '--steps', '12']);
  assert.equal(r.status, 1, 'a failed trial makes the run exit 1');
  assert.match(r.stdout, /1 done, 1 failed/);
  const id = path.basename(bad);
  const status = JSON.parse(readFileSync(path.join(bad, 'status.json'), 'utf8')) as { state: string; error: string };
  assert.equal(status.state, 'failed');
  assert.match(status.error, new RegExp(`^trial ${id}: every checkpoint is damaged: .*--only ${id} --force`));
  for (const n of cks) assert.ok(existsSync(path.join(bad, 'checkpoints', `${n}.damaged`)), `${n} is kept as .damaged`);
  assert.equal(JSON.parse(readFileSync(path.join(good, 'status.json'), 'utf8')).step, 12, 'the other trial trained on to step 12');
  const idx = JSON.parse(readFileSync(path.join(s.runDir, 'index.json'), 'utf8')) as { trials: { id: string; status: string }[] };
  assert.deepEqual(Object.fromEntries(idx.trials.map((t) => [t.id, t.status])), { [id]: 'failed', [path.basename(good)]: 'done' });
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});
