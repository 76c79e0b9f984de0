import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { planProblems } from '../../../compiler/plan/schema.js';
import { writeTinyPipeline } from '../../helpers/tiny-pipeline.js';

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');
const dir = mkdtempSync(path.join(tmpdir(), 'moec-compile-'));

const pipeline = (name: string, train: string, width = 64, context = 64): string => writeTinyPipeline(dir, name, { width, context, train });

const compile = (...args: string[]) => spawnSync(process.execPath, [moec, 'compile', ...args, '--no-device'], { encoding: 'utf8' });

test('moec compile prints a summary whose parameter count matches the front end', () => {
  const r = compile(pipeline('ok', '  batch 8'));
  assert.equal(r.status, 0, r.stderr);
  const m = /parameters\s+([\d.]+ k) \(front end counted ([\d.]+ k) total/.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.equal(m[1], m[2]);
  assert.match(r.stdout, /FLOPs per step/);
  assert.match(r.stdout, /peak memory/);
  assert.match(r.stdout, /dispatches\s+train_step \d+/);
});

test('moec compile --emit plan prints a valid Plan; --emit wgsl prints every kernel', () => {
  const file = pipeline('ok2', '  batch 8');
  const plan = compile(file, '--emit', 'plan');
  assert.equal(plan.status, 0, plan.stderr);
  const parsed = JSON.parse(plan.stdout);
  assert.deepEqual(planProblems(parsed), []);
  assert.ok(parsed.programs.train_step.length > 20);
  const wgsl = compile(file, '--emit', 'wgsl');
  assert.equal(wgsl.status, 0, wgsl.stderr);
  assert.equal((wgsl.stdout.match(/@compute/g) ?? []).length, parsed.kernels.length);
});

test('a micro-batch too large for the device runs as smaller ones, said in the summary; one that fits at no micro-batch is refused with the limit and the .moe line', () => {
  // The activations of 1000 sequences are over maxBufferSize: the compiler runs 4 micro-batches of
  // 250 (compiler/lower/fit.ts), keeping the 1000 sequences per step.
  const r = compile(pipeline('big', '  steps 10\n  batch 1000', 512));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /chosen +batch 1000 runs as 4 micro-batches of 250, the same 1000 sequences per step, to fit maxBufferSize 256\.0 MiB/);
  assert.match(r.stdout, /FLOPs per step .*64000 tokens/);
  // A batch whose kernels need more workgroups than WebGPU allows in one dimension is split as well.
  const grid = compile(pipeline('grid', '  steps 10\n  batch 4096'));
  assert.equal(grid.status, 0, grid.stderr);
  assert.match(grid.stdout, /chosen +batch 4096 runs as \d+ micro-batches of \d+, the same 4096 sequences per step, to fit /);
  // Not even one sequence per micro-batch fits: refused, at the batch, saying so.
  const one = compile(pipeline('one', '  steps 10\n  batch 2', 512, 32768));
  assert.equal(one.status, 1);
  assert.doesNotMatch(one.stderr, /\n\s+at /, 'no stack trace');
  assert.match(one.stderr, /one\.moe:14:\d+ error: .*even at train\.batch 1 \(micro-batches of one sequence\), .* over the device's max/);
  assert.match(one.stderr, /hint: lower the context or the model's size/);
});

test('--emit of an unknown kind and an unknown --trial are refused clearly', () => {
  const file = pipeline('ok3', '  batch 8');
  const bad = compile(file, '--emit', 'ptx');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--emit 'ptx' is not one of summary, plan, wgsl/);
  const none = compile(file, '--trial', 'zzzz');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /--trial 'zzzz' matches no trial/);
});

test('moec compile --emit graph prints tensors with shapes and ops with their kernels and named bindings', () => {
  const r = compile(pipeline('graph', '  batch 2'), '--emit', 'graph');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^graph \S+: \d+ tensors, \d+ ops, \d+ kernels/);
  // Parameters sit in the params region; activations wherever the memory planner put them.
  assert.match(r.stdout, /\n {2}wte\.weight +param +\[256x64\] f32 +65536 +params @0 B\n/);
  assert.match(r.stdout, /\n {2}tokens +input +\[128\] u32 +512 +own buffer\n/);
  assert.match(r.stdout, /\nphase forward:\n/);
  assert.match(r.stdout, /\nphase update:\n/);
  // The optimiser's ops, with the kernel the lowering chose and each binding by its WGSL name.
  assert.match(r.stdout, /\n {2}adamw\.decay: adamw\S* -> adamw\S* \(workgroup \d+x1x1, grid \d+x1x1\)\n {4}params +?= params \[\d+\] f32 read-write\n {4}grads +?= grads \[\d+\] f32 read\n/);
  const plan = JSON.parse(compile(pipeline('graph', '  batch 2'), '--emit', 'plan').stdout);
  const ops = [...r.stdout.matchAll(/^ {2}(\S+): /gm)].map((m) => m[1]);
  // Every dispatch of train_step is one op printed.
  for (const d of plan.programs.train_step) assert.ok(ops.includes(d.label ?? d.kernel), `${d.label} missing`);
});
