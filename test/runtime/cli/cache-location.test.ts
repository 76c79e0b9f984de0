import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot, cacheRootAndWhy } from '../../../runtime/data/cache.js';

// One data cache per user, whatever folder moec runs from: MOEC_CACHE, else XDG_CACHE_HOME/moec,
// else ~/.cache/moec; `moec doctor` says which.

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

function withEnv<T>(env: Record<string, string | undefined>, fn: () => T): T {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(before)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

test('the cache is per user, not per folder: MOEC_CACHE, else $XDG_CACHE_HOME/moec, else ~/.cache/moec', () => {
  const cwd = process.cwd();
  const elsewhere = mkdtempSync(path.join(tmpdir(), 'moec-cwd-'));
  withEnv({ MOEC_CACHE: undefined, XDG_CACHE_HOME: undefined }, () => {
    const here = cacheRoot();
    assert.equal(here, path.join(homedir(), '.cache', 'moec'));
    process.chdir(elsewhere);
    try {
      assert.equal(cacheRoot(), here, 'the same cache from another folder');
    } finally {
      process.chdir(cwd);
    }
  });
  withEnv({ MOEC_CACHE: undefined, XDG_CACHE_HOME: '/var/cache/me' }, () => assert.deepEqual(cacheRootAndWhy(), { dir: '/var/cache/me/moec', from: 'XDG_CACHE_HOME' }));
  withEnv({ MOEC_CACHE: undefined, XDG_CACHE_HOME: 'relative/dir' }, () => assert.equal(cacheRoot(), path.join(homedir(), '.cache', 'moec'), 'a relative XDG_CACHE_HOME is ignored'));
  withEnv({ MOEC_CACHE: '/tmp/mine', XDG_CACHE_HOME: '/var/cache/me' }, () => assert.equal(cacheRoot(), '/tmp/mine'));
});

test('moec doctor prints where the cache is and notes an old per-folder .moec-cache', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-doctor-'));
  mkdirSync(path.join(dir, '.moec-cache'));
  const xdg = path.join(dir, 'xdg');
  const env: Record<string, string | undefined> = { ...process.env, XDG_CACHE_HOME: xdg };
  delete env.MOEC_CACHE;
  // Said before the GPU opens, so also when none does (an adapter name that matches none: quick).
  const r = spawnSync(process.execPath, [moec, 'doctor', '--quick', '--adapter', 'no-such-adapter-h21a'], { cwd: dir, env, encoding: 'utf8' });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^cache +${path.join(xdg, 'moec')} \\(from XDG_CACHE_HOME; set MOEC_CACHE to move it\\), not created yet$`, 'm'), r.stdout + r.stderr);
  assert.match(r.stdout, /note: \S+\.moec-cache is a cache of an older moec, no longer used/);
});
