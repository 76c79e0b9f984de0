import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Gpu, listAdapters } from '../../runtime/gpu/device.js';
import { UserError } from '../../grammar/user-error.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../runtime/cli/moec.js', import.meta.url));
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };

test('the adapters on this machine can be listed', async () => {
  const names = await listAdapters();
  assert.ok(names.length >= 1, 'at least one adapter');
  assert.ok(names.every((n) => n.includes("name: '")), names.join('\n'));
});

test('an unknown adapter name is a clear error that lists the adapters', async () => {
  await assert.rejects(Gpu.open({ adapter: 'no-such-gpu-9000' }), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.where, '--adapter');
    assert.match(e.message, /no GPU adapter matches 'no-such-gpu-9000'; the adapters on this machine are:\n {4}backend: '/);
    return true;
  });
});

test('moec doctor --adapter with an unknown name exits 1 without a stack trace', async () => {
  const r = await run(process.execPath, [cli, 'doctor', '--adapter', 'no-such-gpu-9000'], { env }).catch((e) => e);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--adapter: error: no GPU adapter matches 'no-such-gpu-9000'/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('MOEC_ADAPTER selects the adapter too', async () => {
  const r = await run(process.execPath, [cli, 'doctor', '--quick'], { env: { ...env, MOEC_ADAPTER: 'nonexistent-adapter' } }).catch((e) => e);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /MOEC_ADAPTER: error: no GPU adapter matches 'nonexistent-adapter'/);
});

test('moec doctor names the adapter and passes its self-test', async () => {
  const r = await run(process.execPath, [cli, 'doctor', '--quick'], { env });
  assert.match(r.stdout, /^adapter {3}\S/m);
  assert.match(r.stdout, /features {2}shader-f16:(yes|no) {2}subgroups:(yes|no) {2}timestamp-query:(yes|no)/);
  assert.match(r.stdout, /maxStorageBufferBindingSize/);
  assert.equal((r.stdout.match(/^ {2}ok /gm) ?? []).length, 5);
  assert.match(r.stdout, /doctor: all checks passed/);
});

test('an unknown command and a bad flag get usage, not a stack trace', async () => {
  const a = await run(process.execPath, [cli, 'doctr'], { env }).catch((e) => e);
  assert.equal(a.code, 1);
  assert.match(a.stderr, /unknown command 'doctr'/);
  const b = await run(process.execPath, [cli, 'doctor', '--adaptr', 'x'], { env }).catch((e) => e);
  assert.equal(b.code, 1);
  assert.match(b.stderr, /Unknown option '--adaptr'/);
  assert.match(b.stderr, /usage: moec doctor/);
});
