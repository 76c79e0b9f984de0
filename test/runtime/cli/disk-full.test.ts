import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// A full disk, for real: a small tmpfs (we mount it; this needs root), filled up but for a little.
// moec must say "disk full at PATH", keep what it had written, and print no stack trace.

const moec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/cli/moec.js');

/** Mounts a tmpfs of `size`, or says why it cannot. */
function mountTmpfs(size: string): { dir: string; unmount: () => void } | string {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-full-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot mount a tmpfs here (${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}); run as root where mounting is allowed`;
  return { dir, unmount: () => { spawnSync('umount', [dir]); rmSync(dir, { recursive: true, force: true }); } };
}

/** Fill the file system at `dir` until `leave` bytes are free. */
function fill(dir: string, leave: number): string {
  const st = statfsSync(dir);
  const free = st.bavail * st.bsize;
  const filler = path.join(dir, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, free - leave)));
  return filler;
}

const noStack = (s: string) => assert.doesNotMatch(s, /\n\s+at |internal error/, `no stack trace:\n${s}`);

test('moec fmt on a full disk leaves the source whole and says disk full', (t) => {
  const m = mountTmpfs('256k');
  if (typeof m === 'string') { t.skip(m); return; }
  try {
    const file = path.join(m.dir, 'messy.moe');
    // Unformatted, and longer formatted than now, so the rewrite needs more space than the file holds.
    const text = `${Array.from({ length: 300 }, (_, i) => `data d${i} { source text "x${i}.txt"; tokenizer bytes; context 16 }`).join('\n')}\n`;
    writeFileSync(file, text);
    fill(m.dir, 4096);
    const r = spawnSync(process.execPath, [moec, 'fmt', file], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`disk full at ${file.replace(/[.]/g, '\\.')}`));
    noStack(r.stderr);
    assert.equal(readFileSync(file, 'utf8'), text, 'the source is as it was, not cut short');
    assert.deepEqual(readdirSync(m.dir).sort(), ['filler', 'messy.moe'], 'no temp file left');
  } finally {
    m.unmount();
  }
});

test('moec run on a full disk says disk full at the path, keeps what it wrote, and resumes once there is space', (t) => {
  const m = mountTmpfs('2m');
  if (typeof m === 'string') { t.skip(m); return; }
  try {
    const work = mkdtempSync(path.join(tmpdir(), 'moec-full-work-'));
    const data = path.join(work, 'data');
    mkdirSync(data);
    writeFileSync(path.join(data, 'a.txt'), Array.from({ length: 20 }, (_, i) => `paragraph ${i}: ${'the quick brown fox jumps over the lazy dog. '.repeat(10)}`).join('\n\n'));
    const file = path.join(work, 'full.moe');
    writeFileSync(file, `
data docs { source text "${path.join(data, 'a.txt')}"; tokenizer bytes; context 16; valid 20% }
model m { layers 1; width 16; heads 2; ffn 2x }
train { steps 10; batch 2; lr 3e-3; warmup 2; seed 5 }
evaluate { every 5; batches 1 }
`);
    const env = { ...process.env, MOEC_CACHE: path.join(work, 'cache'), CI: '1' };
    const out = path.join(m.dir, 'runs');
    // A checkpoint of this model (weights and two AdamW moments) is about 80 KB: the first does not fit.
    const filler = fill(m.dir, 48 * 1024);
    const r = spawnSync(process.execPath, [moec, 'run', file, '--out', out], { cwd: work, env, encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`disk full at ${out.replace(/[.]/g, '\\.')}/full/\\w+/`), r.stderr);
    noStack(r.stdout + r.stderr);
    const runDir = path.join(out, 'full');
    const trial = readdirSync(runDir).find((d) => existsSync(path.join(runDir, d, 'config.json')))!;
    const metrics = readFileSync(path.join(runDir, trial, 'metrics.jsonl'), 'utf8');
    assert.ok(metrics.endsWith('\n'));
    const records = metrics.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number });
    assert.ok(records.some((x) => x.kind === 'train'), 'the metrics written before the disk filled are kept');
    assert.ok(!existsSync(path.join(runDir, '.lock')), 'the lock is released');
    const ck = path.join(runDir, trial, 'checkpoints');
    assert.deepEqual(existsSync(ck) ? readdirSync(ck).filter((n) => n.includes('.tmp-')) : [], [], 'no temp file left');

    rmSync(filler);
    const again = spawnSync(process.execPath, [moec, 'run', file, '--out', out, '--resume'], { cwd: work, env, encoding: 'utf8' });
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /1 done, 0 failed/);
  } finally {
    m.unmount();
  }
});
