import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterUnavailable, startLocalCluster, type LocalCluster } from './local-cluster.js';
import { writeWordCorpus } from '../../../runtime/bench/word-corpus.js';

// moec run --slurm end to end on a one-host Slurm cluster (munged, slurmctld, slurmd started here):
// a two-trial sweep as a job array, one task requeued mid-trial; every trial ends done once, its
// metrics without a repeated step, its losses those of a one-process run.

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

function corpus(dir: string): void {
  writeWordCorpus(dir, { vocab: 47, seed: 11, docs: 8, words: 200 });
}

const pipeline = (data: string, steps: number) => `
data docs {
  source folder "${data}"
  label topic
  tokenizer bytes
  context 16
  valid 20%
}
model m { layers 1; width 16; heads 2; ffn 2x; dropout 0.0 }
train { steps ${steps}; batch 2; lr 3e-3; warmup 2; seed 3 }
evaluate { every 10; batches 1 }
sweep { seeds 2 }
`;

function setup(steps = 40) {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-slurm-run-'));
  corpus(path.join(dir, 'data'));
  const file = path.join(dir, 'arr.moe');
  writeFileSync(file, pipeline(path.join(dir, 'data'), steps));
  const env: NodeJS.ProcessEnv = { ...process.env, MOEC_CACHE: path.join(dir, 'cache'), CI: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
  return { dir, file, env };
}

const run = (args: string[], cwd: string, env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [moec, ...args], { cwd, env, encoding: 'utf8' });

test('--dry-run prints the job array script and writes nothing', () => {
  const { dir, file, env } = setup();
  const r = run(['run', file, '--slurm', '--dry-run', '--partition', 'gpu', '--time', '00:10:00', '--max-parallel', '1', '--out', path.join(dir, 'runs')], dir, env);
  assert.equal(r.status, 0, r.stderr);
  const s = r.stdout;
  assert.match(s, /^#!\/bin\/bash\n/);
  assert.match(s, /^#SBATCH --array=0-1%1$/m);
  assert.match(s, /^#SBATCH --requeue$/m);
  assert.match(s, /^#SBATCH --partition=gpu$/m);
  assert.match(s, /^#SBATCH --time=00:10:00$/m);
  // A quarter of a 10-minute limit is more than 120 s: the signal comes 120 s before it.
  assert.match(s, /^#SBATCH --signal=B:USR1@120$/m);
  assert.match(s, new RegExp(`^#SBATCH --output=${path.join(dir, 'runs', 'arr', 'slurm', 'logs')}/%A_%a.out$`, 'm'));
  assert.match(s, new RegExp(`moec\\.js slurm-task ${path.join(dir, 'runs', 'arr', 'slurm', 'array-1.json').replace(/[.]/g, '\\.')} "\\$SLURM_ARRAY_TASK_ID" &`));
  assert.match(s, /trap 'near_limit=1; kill -USR1 "\$pid"/);
  assert.match(s, /scontrol requeue "\$\{SLURM_ARRAY_JOB_ID\}_\$\{SLURM_ARRAY_TASK_ID\}"/);
  assert.match(r.stderr, /dry run: would write/);
  assert.equal(existsSync(path.join(dir, 'runs')), false, 'a dry run writes nothing');
  // A short limit moves the signal to a quarter of it.
  const short = run(['run', file, '--slurm', '--dry-run', '--time', '4:00', '--out', path.join(dir, 'runs')], dir, env);
  assert.match(short.stdout, /^#SBATCH --signal=B:USR1@60$/m);
  assert.doesNotMatch(short.stdout, /%\d/, 'no --max-parallel: no throttle');
  // The script is valid bash.
  const scriptFile = path.join(dir, 'dry.sbatch');
  writeFileSync(scriptFile, s);
  assert.equal(spawnSync('bash', ['-n', scriptFile]).status, 0);
});

test('bad Slurm flags, and no sbatch on PATH, are refused with what to do', () => {
  const { dir, file, env } = setup();
  const out = path.join(dir, 'runs');
  const cases: [string[], RegExp][] = [
    [['--slurm', '--time', '10 min'], /--time: error: --time '10 min' is not a Slurm time limit\n {2}hint: write HH:MM:SS/],
    [['--slurm', '--max-parallel', '0'], /--max-parallel: error: --max-parallel '0' is not a positive whole number/],
    [['--slurm', '--partition', 'a b'], /--partition: error: --partition 'a b' is not a partition name/],
    [['--partition', 'gpu'], /--partition: error: --partition applies to Slurm submissions only\n {2}hint: add --slurm/],
    [['--dry-run'], /--dry-run: error: --dry-run applies to Slurm submissions only/],
  ];
  for (const [args, want] of cases) {
    const r = run(['run', file, ...args, '--out', out], dir, env);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.doesNotMatch(r.stderr, /internal error|    at /);
  }
  // A PATH without Slurm (moec runs by node's absolute path).
  const emptyBin = path.join(dir, 'bin');
  mkdirSync(emptyBin);
  const r = run(['run', file, '--slurm', '--out', out], dir, { ...env, PATH: emptyBin });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /--slurm: error: 'sbatch' is not on PATH, so the sweep cannot be submitted to Slurm\n {2}hint: run this on a Slurm login node .*--dry-run/);
  assert.equal(existsSync(out), false, 'nothing is written before sbatch is found');
  // slurm-task outside an array task, and with an index the list does not have.
  const list = path.join(dir, 'list.json');
  writeFileSync(list, JSON.stringify({ version: 1, file, preset: null, steps: null, portable: false, adapter: null, runDir: path.join(out, 'arr'), out, created: '', trials: [{ id: 'x', name: 'x' }] }));
  const noIndex = run(['slurm-task', list], dir, { ...env, SLURM_ARRAY_TASK_ID: '' });
  assert.equal(noIndex.status, 1);
  assert.match(noIndex.stderr, /INDEX: error: no trial index: give INDEX or run inside a Slurm array task/);
  const noRun = run(['slurm-task', list, '0'], dir, env);
  assert.equal(noRun.status, 1);
  assert.match(noRun.stderr, /runs\/arr: error: no such run directory/);
  assert.equal(existsSync(out), false, 'a task without its run writes nothing');
  const far = run(['slurm-task', list, '3'], dir, env);
  assert.equal(far.status, 1);
  assert.match(far.stderr, /list\.json: error: trial index '3' is outside the list's 0\.\.0/);
  const notList = run(['slurm-task', file, '0'], dir, env);
  assert.equal(notList.status, 1);
  assert.match(notList.stderr, /arr\.moe: error: not valid JSON/);
});

/** Train losses by step of every trial, and the steps each trial logged (repeats kept). */
function metricsOf(runDir: string): Map<string, { steps: number[]; losses: Map<number, number>; evals: number[] }> {
  const out = new Map<string, { steps: number[]; losses: Map<number, number>; evals: number[] }>();
  for (const d of readdirSync(runDir)) {
    const f = path.join(runDir, d, 'metrics.jsonl');
    if (!existsSync(f)) continue;
    const ms = readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; loss: number });
    const train = ms.filter((m) => m.kind === 'train');
    out.set(d, { steps: train.map((m) => m.step), losses: new Map(train.map((m) => [m.step, m.loss])), evals: ms.filter((m) => m.kind === 'eval').map((m) => m.step) });
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a sweep as a Slurm job array on a one-host cluster: one task requeued, one signalled as at its time limit, every trial done once', { timeout: 420_000 }, async (t) => {
  const why = clusterUnavailable();
  if (why) {
    t.skip(`no Slurm cluster can run here: ${why}`);
    return;
  }
  let cluster: LocalCluster;
  try {
    cluster = await startLocalCluster();
  } catch (e) {
    t.skip(`slurmctld/slurmd could not start here: ${(e as Error).message.split('\n')[0]}`);
    return;
  }
  let follower: ReturnType<typeof spawn> | undefined;
  try {
    const steps = 120;
    const { dir, file, env: base } = setup(steps);
    const env = { ...base, ...cluster.env, MOEC_CACHE: base.MOEC_CACHE };
    const out = path.join(dir, 'runs');
    const runDir = path.join(out, 'arr');
    // The reference: the same sweep in one process.
    const local = run(['run', file, '--out', path.join(dir, 'local')], dir, env);
    assert.equal(local.status, 0, local.stderr);
    const reference = metricsOf(path.join(dir, 'local', 'arr'));

    follower = spawn(process.execPath, [moec, 'run', file, '--slurm', '--max-parallel', '1', '--out', out], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    follower.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
    follower.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    const exited = new Promise<number | null>((r) => follower!.on('exit', (code) => r(code)));

    // Wait for the first task to checkpoint mid-trial, then requeue it (SIGTERM to its processes).
    const index = () => JSON.parse(readFileSync(path.join(runDir, 'index.json'), 'utf8')) as { trials: { id: string }[] };
    let first: string | undefined;
    for (let i = 0; i < 1200 && !first; i++) {
      await sleep(100);
      if (!existsSync(path.join(runDir, 'index.json'))) continue;
      const id = index().trials[0]!.id;
      const ck = path.join(runDir, id, 'checkpoints');
      if (existsSync(ck) && readdirSync(ck).some((f) => /^step-(10|20|30|40|50)\.safetensors$/.test(f))) first = id;
    }
    assert.ok(first, `the first trial never checkpointed: ${stderr}`);
    const sub = JSON.parse(readFileSync(path.join(runDir, 'slurm', 'submissions.jsonl'), 'utf8').split('\n')[0]!) as { array_job_id: string };
    const task0 = `${sub.array_job_id}_0`;
    cluster.cmd('scontrol', ['requeue', task0]);
    // A requeued job waits out a begin-time hold (about two minutes); a test need not.
    const waitPending = async (task: string) => {
      for (let i = 0; i < 300; i++) {
        await sleep(200);
        if (cluster.cmd('squeue', ['-h', '-r', '-j', task, '-o', '%T']).trim() === 'PENDING') return;
      }
      assert.fail(`${task} was not requeued`);
    };
    await waitPending(task0);
    const mid = run(['status', runDir], dir, env);
    assert.equal(mid.status, 0, mid.stderr);
    assert.match(mid.stdout, new RegExp(`${first} +queued .*\\n +Slurm task ${task0} pending \\(BeginTime\\)`));
    assert.match(mid.stdout, /running .*\n +on .*Slurm job \d+_1 \(\d+\)|queued .*\n +Slurm task \d+_1 pending/);
    cluster.cmd('scontrol', ['update', `JobId=${task0}`, 'StartTime=now']);

    // The second task gets what --signal=B:USR1@S sends before the time limit: USR1 to the batch
    // shell alone, which passes it on; moec checkpoints and exits 75, and the shell requeues the task.
    const second = index().trials[1]!.id;
    const task1 = `${sub.array_job_id}_1`;
    let checkpointed = false;
    for (let i = 0; i < 1200 && !checkpointed; i++) {
      await sleep(100);
      const ck = path.join(runDir, second, 'checkpoints');
      checkpointed = existsSync(ck) && readdirSync(ck).some((f) => /^step-(10|20|30|40|50)\.safetensors$/.test(f));
    }
    assert.ok(checkpointed, `the second trial never checkpointed: ${stderr}`);
    cluster.cmd('scancel', ['--signal=USR1', '--batch', task1]);
    await waitPending(task1);
    cluster.cmd('scontrol', ['update', `JobId=${task1}`, 'StartTime=now']);

    const code = await exited;
    assert.equal(code, 0, `follower:\n${stdout}\n${stderr}`);
    assert.match(stdout, /2 done, 0 failed, 0 not finished; report: .*report\.md/);
    const got = metricsOf(runDir);
    assert.equal(got.size, 2);
    for (const [id, m] of got) {
      assert.deepEqual(m.steps, [...new Set(m.steps)].sort((a, b) => a - b), `${id}: a step appears twice or out of order`);
      assert.equal(m.steps.at(-1), steps);
      assert.deepEqual(m.evals, Array.from({ length: steps / 10 }, (_, i) => 10 * (i + 1)));
      // The resumed trial's losses are those of the one-process run, bit for bit.
      assert.deepEqual([...m.losses], [...reference.get(id)!.losses], `${id}: losses differ from the one-process run`);
      assert.equal(JSON.parse(readFileSync(path.join(runDir, id, 'status.json'), 'utf8')).state, 'done');
    }
    const attempts = readFileSync(path.join(runDir, first!, 'attempts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(attempts.map((a) => a.event === 'start' ? `start ${a.slurm.restarts}` : `end ${a.outcome}`), ['start 0', 'end stopped', 'start 1', 'end done']);
    assert.equal(attempts[1].signal, 'SIGTERM');
    const attempts2 = readFileSync(path.join(runDir, second, 'attempts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(attempts2.map((a) => a.event === 'start' ? `start ${a.slurm.restarts}` : `end ${a.outcome}`), ['start 0', 'end stopped', 'start 1', 'end done']);
    assert.equal(attempts2[1].signal, 'SIGUSR1');
    const log1 = readFileSync(path.join(runDir, 'slurm', 'logs', `${task1}.out`), 'utf8');
    assert.match(log1, /moec: checkpointed before the time limit; requeueing/);
    assert.ok(existsSync(path.join(runDir, 'report.md')));
    const idx = JSON.parse(readFileSync(path.join(runDir, 'index.json'), 'utf8')) as { trials: { status: string }[] };
    assert.deepEqual(idx.trials.map((x) => x.status), ['done', 'done']);
    const after = run(['status', runDir], dir, env);
    assert.match(after.stdout, /2 trials: 2 done/);
    for (const id of [first, second]) assert.match(after.stdout, new RegExp(`${id} +done +120/120 .*\\n +2 attempts, requeued 1×`));
    // Submitting again finds nothing to do.
    const again = run(['run', file, '--slurm', '--resume', '--out', out], dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /nothing to submit \(2 done already\)/);
  } finally {
    if (follower && follower.exitCode === null && follower.signalCode === null) follower.kill('SIGKILL');
    await cluster.stop();
  }
});
