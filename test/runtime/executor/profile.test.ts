import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';

const spec: Gpt2Spec = {
  name: 'profiled', layers: 1, width: 16, heads: 2, ffn: 32, vocab: 11, context: 8, dropout: 0,
  batch: 2, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 1,
};

test('per-dispatch profiles cover every dispatch of train_step, by timestamps and by submit+wait', async () => {
  const compiled = compileGpt2(spec);
  const m = await GpuModel.create(await testGpu(), compiled);
  try {
    m.initParams(1);
    const n = spec.batch * spec.context;
    m.trainStep(1, 1e-3, 1, [{ tokens: Uint32Array.from({ length: n }, (_, i) => i % 11), targets: Uint32Array.from({ length: n }, (_, i) => (i + 1) % 11) }]);
    const program = compiled.plan.programs['train_step']!;
    const labels = new Set(program.map((d) => d.label ?? d.kernel));
    const check = (times: { label: string; dispatches: number; ms: number }[]) => {
      assert.deepEqual(new Set(times.map((t) => t.label)), labels);
      assert.equal(times.reduce((a, t) => a + t.dispatches, 0), program.length);
      for (const t of times) assert.ok(Number.isFinite(t.ms) && t.ms >= 0, `${t.label}: ${t.ms} ms`);
      // Sorted slowest first.
      for (let i = 1; i < times.length; i++) assert.ok(times[i - 1]!.ms >= times[i]!.ms);
    };
    const bySubmit = await m.ex.profileBySubmit('train_step', 1);
    check(bySubmit);
    // Waiting on each submit costs time on the host: no dispatch is measured as free.
    assert.ok(bySubmit.every((t) => t.ms > 0));
    const byTimestamps = await m.ex.profile('train_step', 1);
    if (m.ex.gpu.hasTimestamps) check(byTimestamps!);
    else assert.equal(byTimestamps, undefined);
  } finally {
    m.destroy();
  }
});
