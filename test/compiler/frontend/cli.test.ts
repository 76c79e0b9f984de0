import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { checkCommand } from '../../../runtime/cli/commands/check.js';
import { expandCommand } from '../../../runtime/cli/commands/expand.js';
import { fmtCommand } from '../../../runtime/cli/commands/fmt.js';
import { capture, invalidDir, pipelinesDir } from './helpers.js';


test('moec check: 0 and a summary on clean files, 1 with underlined diagnostics on errors', async () => {
  const ok = await capture(() => checkCommand.run([path.join(pipelinesDir, 'quickstart.moe')]));
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /^1 file ok: \d+ trials?$/m);
  const bad = await capture(() => checkCommand.run([path.join(invalidDir, 'router-misspelt.moe'), path.join(invalidDir, 'heads-divide.moe')]));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /router-misspelt\.moe:12:12 error: unknown router 'learnd' \(did you mean 'learned'\?\)\n 12 \|     router learnd\n    \|            \^{6}/);
  assert.match(bad.err, /2 files: 2 errors/);
  assert.doesNotMatch(bad.err, /\n\s+at /, 'no stack trace');
});

test('moec expand: a table, or JSON with every trial', async () => {
  const file = path.join(pipelinesDir, 'token-vs-sequence.moe');
  const t = await capture(() => expandCommand.run([file]));
  assert.equal(t.code, 0);
  assert.match(t.out, /unit=sequence,top=2,experts=8,seed=2/);
  const j = await capture(() => expandCommand.run([file, '--json']));
  const parsed = JSON.parse(j.out) as { trials: { id: string }[] };
  assert.equal(parsed.trials.length, 16);
});

test('moec fmt rewrites to the canonical layout, keeps comments, and --check reports', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-fmt-'));
  const f = path.join(dir, 'x.moe');
  writeFileSync(f, 'train { steps 10 ; lr 6e-4   # fast\n}\n');
  assert.equal((await capture(() => fmtCommand.run(['--check', f]))).code, 1);
  assert.equal((await capture(() => fmtCommand.run([f]))).code, 0);
  assert.equal(readFileSync(f, 'utf8'), 'train {\n  steps 10\n  lr 6e-4  # fast\n}\n');
  assert.equal((await capture(() => fmtCommand.run(['--check', f]))).code, 0);
});

test('moec check on a missing file says only that, not a cascade of missing blocks', async () => {
  const r = await capture(() => checkCommand.run([path.join(tmpdir(), 'no-such-file.moe')]));
  assert.equal(r.code, 1);
  assert.match(r.err, /error: cannot read '.*no-such-file\.moe': no such file\n1 file: 1 error/);
  assert.doesNotMatch(r.err, /no data set is defined/);
});

test('moec expand: a warning every trial shares is printed once, on lines of its own', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-expand-'));
  const file = path.join(dir, 'soft.moe');
  writeFileSync(file, readFileSync(path.join(pipelinesDir, 'quickstart.moe'), 'utf8').replace('capacity dropless', 'dispatch soft').replace('model.moe.top in [1, 2]', 'model.moe.top in [1, 2]\n  seeds 2'));
  const r = await capture(() => expandCommand.run([file]));
  assert.equal(r.code, 0, r.err);
  const heads = r.err.split('\n').filter((l) => /warning: /.test(l));
  assert.equal(heads.length, 1, r.err);
  assert.match(heads[0]!, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:24:14 warning: Soft MoE is not causal`));
  assert.match(r.out, /^4 trials$/m);
});
