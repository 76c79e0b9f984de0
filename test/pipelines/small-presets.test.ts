import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline } from '../../compiler/frontend/index.js';
import { cacheRoot } from '../../runtime/data/cache.js';

// Every study pipeline's small preset runs end to end: the first trial of its sweep, for a few
// steps, through `moec run` (data fetched into a shared cache, compiled, trained, evaluated,
// checkpointed and reported). The full sweeps are what docs/RESULTS.md reports.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const moec = path.join(root, 'dist/runtime/cli/moec.js');
const pipelines = readdirSync(path.join(root, 'pipelines')).filter((f) => f.endsWith('.moe')).sort();
const out = mkdtempSync(path.join(tmpdir(), 'moec-pipelines-'));
// The data cache outlives the test: the user's own (shared with the quickstart of `npm run setup`).
const cache = cacheRoot();

for (const file of pipelines) {
  test(`pipelines/${file}: the small preset runs end to end`, () => {
    const full = path.join(root, 'pipelines', file);
    const load = loadPipeline(full, { preset: 'small' });
    assert.ok(load.ok, `${file} must check clean with --preset small`);
    const first = load.trials[0]!;
    const r = spawnSync(process.execPath, [moec, 'run', full, '--preset', 'small', '--only', first.id, '--steps', '3', '--out', out], {
      encoding: 'utf8', cwd: root, env: { ...process.env, CI: '1', MOEC_CACHE: cache }, timeout: 900_000,
    });
    assert.equal(r.status, 0, `moec run failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /1 done, 0 failed/);
    const runDir = path.join(out, `${file.replace(/\.moe$/, '')}-small`);
    const metrics = readFileSync(path.join(runDir, first.id, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const evals = metrics.filter((m) => m.kind === 'eval');
    assert.ok(evals.length >= 1 && evals.every((e) => Number.isFinite(e.valid_ppl)), 'a finite validation perplexity');
    // The cluster task is classification: its evaluations carry test accuracy and dispatch entropy.
    if (load.pipeline!.data[load.pipeline!.train.data]!.source.kind === 'clusters') {
      assert.ok(evals.every((e) => e.valid_acc >= 0 && e.valid_acc <= 1 && e.dispatch_entropy >= 0), 'accuracy and dispatch entropy');
    }
    assert.ok(existsSync(path.join(runDir, 'report.md')));
  });
}
