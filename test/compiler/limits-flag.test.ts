import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// `moec compile --limits`: each named profile's memory line and time estimate, and a clear error
// for an unknown profile or a plan over a profile's limits (no GPU needed).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const moec = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'dist/runtime/cli/moec.js'), 'compile', ...args], { encoding: 'utf8', cwd: root });

test('--limits prints memory and time per profile', () => {
  const r = moec('pipelines/quickstart.moe', '--trial', '1', '--limits', 'webgpu,lavapipe,nvidia-80gb');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /webgpu .*device memory unknown.*no matmul rate/);
  assert.match(r.stdout, /lavapipe .* of 24\.00 GiB .*at 19\.50 GFLOP\/s: .* per step, .* per trial \(300 steps, 6 evaluations\)/);
  assert.match(r.stdout, /nvidia-80gb .* of 80\.00 GiB .*at 15\.00 TFLOP\/s/);
  const withRate = moec('pipelines/quickstart.moe', '--trial', '1', '--limits', 'webgpu', '--rate', '10');
  assert.match(withRate.stdout, /webgpu .*at 10\.00 GFLOP\/s/);
});

test('an unknown profile and a plan over a profile are errors that say what to do', () => {
  const bad = moec('pipelines/quickstart.moe', '--limits', 'nvidia-4090');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--limits 'nvidia-4090' is not a device profile/);
  assert.match(bad.stderr, /webgpu, lavapipe, nvidia-24gb, nvidia-80gb/);
  // GPT-2 small fits WebGPU's defaults (wte in vocabulary parts, parameters in regions); a width-4096
  // quickstart does not: one c_fc weight (4096 × 16384 floats, 256 MiB) is over any binding there.
  const fits = moec('pipelines/dense-baselines.moe', '--trial', '1', '--preset', 'gpt2-small', '--limits', 'webgpu');
  assert.equal(fits.status, 0, fits.stderr);
  assert.match(fits.stdout, /chosen +LM head and embedding cut over the vocabulary: 2 parts of 25129 rows/);
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-limits-'));
  const wide = path.join(dir, 'wide.moe');
  writeFileSync(wide, readFileSync(path.join(root, 'pipelines/quickstart.moe'), 'utf8').replace(/^(\s*)width 64$/m, '$1width 4096'));
  const over = moec(wide, '--trial', '1', '--limits', 'webgpu');
  assert.equal(over.status, 1);
  assert.match(over.stderr, /wide\.moe:\d+:\d+ error: .*over the device's .*\(profile webgpu\)/);
  assert.doesNotMatch(over.stderr, /at .*\.js:\d+/); // no stack trace
});
