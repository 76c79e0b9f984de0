import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../grammar/user-error.js';
import { stopsTheSweep } from '../../../runtime/run/sweep.js';
import { CheckpointDamaged } from '../../../runtime/store/checkpoint-sum.js';
import { RunStore } from '../../../runtime/store/run-store.js';
import { writeSafetensors } from '../../../runtime/store/safetensors.js';

// Every checkpoint carries SHA-256 checksums of its tensor data and of its header; a flipped bit in
// either is found on load, the previous checkpoint is used instead, and with none left the trial fails.

const tmp = () => path.join(mkdtempSync(path.join(tmpdir(), 'moec-ckpt-')), 'runs', 'demo');

function trialWithCheckpoints(steps: number[]) {
  const store = RunStore.create(tmp(), { sweep: 'demo', file: 'd.moe', preset: null, adapter: 'x', trials: [{ id: 'aaaa1111', name: 't' }] });
  const t = store.trial('aaaa1111');
  for (let step = 1; step <= Math.max(...steps); step++) {
    t.appendMetric({ kind: 'train', step, loss: 10 - step, lr: 1e-3, tokens_per_s: 1, time_s: step });
    if (steps.includes(step)) t.saveCheckpoint(step, { 'wte.weight': { shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i + step / 7) } }, { step, batcher: { position: step * 3 } });
  }
  return { t, file: (step: number) => path.join(t.checkpointDir, `step-${step}.safetensors`) };
}

/** Flip bit `bit` of the byte at `offset` (negative: from the end). */
function flip(file: string, offset: number, bit = 0): void {
  const b = readFileSync(file);
  const at = offset < 0 ? b.byteLength + offset : offset;
  b[at]! ^= 1 << bit;
  writeFileSync(file, b);
}

const reopen = (t: { dir: string }) => RunStore.open(path.dirname(t.dir)).trial('aaaa1111');

test('a flipped bit in the tensor data is found; resume falls back to the previous checkpoint and says so', () => {
  const { t, file } = trialWithCheckpoints([4, 8]);
  flip(file(8), -7, 3);
  assert.throws(() => t.loadCheckpoint({ step: 8, path: file(8), bytes: 0 }), (e: unknown) => e instanceof CheckpointDamaged && /tensor data does not match its SHA-256/.test(e.message));
  const r = reopen(t);
  const ck = r.resume()!;
  assert.equal(ck.step, 4);
  assert.match(ck.fellBack!, new RegExp(`damaged checkpoint ${file(8)} \\(the tensor data does not match its SHA-256 checksum\\).*resuming from the previous one, step-4\\.safetensors`));
  assert.deepEqual(r.readMetrics().map((m) => m.step), [1, 2, 3, 4], 'the metrics after the checkpoint used are dropped');
  assert.deepEqual(readdirSync(t.checkpointDir).sort(), ['step-4.safetensors', 'step-8.safetensors.damaged']);
});

test('a flipped bit in the metadata (the step in the training state) is found', () => {
  const { t, file } = trialWithCheckpoints([4, 8]);
  const bytes = readFileSync(file(8));
  // "step":8 inside the state JSON: '8' (0x38) -> '0' (0x30) keeps the JSON valid, so only the checksum can tell.
  const at = bytes.indexOf('\\"step\\":8');
  assert.ok(at > 0);
  flip(file(8), at + '\\"step\\":'.length, 3);
  const ck = reopen(t).resume()!;
  assert.equal(ck.step, 4);
  assert.match(ck.fellBack!, /the header \(tensor shapes, step, training state\) does not match its SHA-256 checksum/);
});

test('a checkpoint whose step disagrees with its name is refused, also without checksums (older moec)', () => {
  const { t, file } = trialWithCheckpoints([4, 8]);
  // As an older moec wrote them: no checksums. The step is still checked against the name.
  writeSafetensors(file(8), { 'wte.weight': { shape: [1], data: new Float32Array([1]) } }, { format: 'moec', step: '8', state: JSON.stringify({ step: 8 }) });
  assert.equal(reopen(t).loadCheckpoint({ step: 8, path: file(8), bytes: 0 }).step, 8, 'a checkpoint without checksums still loads');
  renameSync(file(8), file(28));
  const ck = reopen(t).resume()!;
  assert.equal(ck.step, 4);
  assert.match(ck.fellBack!, /it says step 8 but is named step-28\.safetensors/);
});

test('with every checkpoint damaged the trial fails naming the files', () => {
  const { t, file } = trialWithCheckpoints([4, 8]);
  flip(file(8), -1);
  flip(file(4), -1);
  assert.throws(() => reopen(t).resume(), (e: unknown) => {
    assert.ok(e instanceof UserError);
    // One trial's state: the sweep records it as this trial's failure and goes on to the next.
    assert.equal(e.kind, 'trial');
    assert.equal(stopsTheSweep(e), false);
    assert.match(e.message, /^trial aaaa1111: every checkpoint is damaged: /);
    assert.ok(e.message.includes(file(8)) && e.message.includes(file(4)), e.message);
    assert.match(e.message, /--only aaaa1111 --force/);
    return true;
  });
});
