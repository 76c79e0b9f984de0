import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { torchSkipReason } from '../../../runtime/bench/torch.js';
import { drift, moecTrack, torchTrack, trackMoe, type TrackData, type TrackRun } from '../../../runtime/bench/torch-track.js';
import { testGpu } from '../../helpers/gpu.js';

// 100 AdamW steps (warm-up 10, cosine, weight decay 0.1 on matrices, global clip 1) of a tiny
// dense and a tiny token-routed MoE model, in moec on the test adapter and in PyTorch on the CPU,
// from the same step-0 weights on the same batches. The two differ only in f32 summation order
// (WGSL workgroup reductions vs CPU BLAS), which Adam amplifies a little step by step.
// Measured on lavapipe: max relative drift ≈ 3e-7 over 100 steps (docs/PERFORMANCE.md, "Training
// tracks PyTorch"). TOLERANCE: per step |Δloss| ≤ 1e-4·|loss|: ~350× the drift seen, for other
// adapters' reduction orders, and still ~80× below the smallest deliberate error below (7.8e-3).
const TOL = 1e-4;

const spec: Gpt2Spec = {
  name: 'track', layers: 2, width: 16, heads: 2, ffn: 32, vocab: 23, context: 8, dropout: 0,
  batch: 4, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0.1, clip: 1,
};
const moe: MoeConfig = trackMoe;
// Sequence routing (mean of each sequence's first 4 hidden states), trained in PyTorch through the
// export's modeling_moec.py; z-loss on, so both auxiliary losses are tracked.
const seqMoe: MoeConfig = { ...moe, unit: 'sequence', prefix: 4, zloss: 0.01 };
const run = (m: MoeConfig | null): TrackRun => ({ spec, moe: m, export: m?.unit === 'sequence', steps: 100, lr: 3e-3, warmup: 10, seed: 3 });
const skip = (await torchSkipReason()) ?? false;

const fmt = (d: ReturnType<typeof drift>) => `max |Δ| ${d.maxAbs.toExponential(2)} (step ${d.worstStep + 1}), max rel ${d.maxRel.toExponential(2)}, step 100 |Δ| ${d.lastAbs.toExponential(2)} rel ${d.lastRel.toExponential(2)}`;

const runs = new Map<string, Promise<TrackData>>();
const moecRun = (name: string, r: TrackRun) => runs.get(name) ?? runs.set(name, (async () => moecTrack(await testGpu(), r))()).get(name)!;

for (const [name, m] of [['dense', null], ['token-routed MoE', moe], ['sequence-routed MoE', seqMoe]] as const) {
  test(`${name}: 100 training steps track PyTorch within ${TOL} relative at every step`, { skip }, async (t) => {
    const r = run(m);
    const ours = await moecRun(name, r);
    const theirs = (await torchTrack(r, ours))!;
    const d = drift(ours.losses, theirs);
    t.diagnostic(`${name}: loss ${theirs[0]!.toFixed(4)} → ${theirs[99]!.toFixed(4)}; ${fmt(d)}`);
    // The run must learn, or a broken optimiser could hide on a flat curve.
    assert.ok(theirs[99]! < 0.7 * theirs[0]!, `PyTorch loss ${theirs[0]} → ${theirs[99]}: the run does not learn`);
    assert.ok(d.maxRel <= TOL, fmt(d));
  });
}

const breaks = [
  ['weight decay on every tensor', 'dense', { decayAll: true }],
  ['the schedule one step late', 'dense', { lrLate: true }],
  ['clipping on each tensor\'s norm instead of the global norm', 'dense', { clipPerTensor: true }],
  ['no bias correction in Adam', 'dense', { noBiasCorrection: true }],
  ['the load-balancing loss dropped', 'token-routed MoE', { noBalance: true }],
  ['the sequence-routed load-balancing loss dropped', 'sequence-routed MoE', { noBalance: true }],
] as const;
for (const [what, name, broken] of breaks) {
  test(`a PyTorch run with ${what} leaves the tolerance (the check can fail)`, { skip }, async (t) => {
    const r = run(name === 'dense' ? null : name === 'token-routed MoE' ? moe : seqMoe);
    const ours = await moecRun(name, r);
    const d = drift(ours.losses, (await torchTrack(r, ours, broken))!);
    t.diagnostic(`${what}: ${fmt(d)}`);
    assert.ok(d.maxRel > TOL, `${what} stays within tolerance: ${fmt(d)}`);
  });
}
