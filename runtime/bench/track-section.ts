// `npm run bench -- --only torch-track`: a model larger than the tracking test's, trained for a few
// hundred steps in moec and in PyTorch from the same weights on the same batches; the loss drift
// per step says whether the agreement the test shows at width 16 holds at a size where reduction
// orders differ more (longer dot products, more heads, more experts).
import type { MoeConfig } from '../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../compiler/graph/gpt2.js';
import type { Gpu } from '../gpu/device.js';
import { torchSkipReason } from './torch.js';
import { drift, moecTrack, torchTrack, trackMoe, type TrackRun } from './torch-track.js';

const trackSpec: Gpt2Spec = {
  name: 'track-bench', layers: 4, width: 128, heads: 4, ffn: 512, vocab: 251, context: 64, dropout: 0,
  batch: 8, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0.1, clip: 1,
};

const tokenMoe: MoeConfig = { ...trackMoe, experts: 8, layers: [1, 3] };
const seqMoe: MoeConfig = { ...tokenMoe, unit: 'sequence', prefix: 16, zloss: 0.001 };

const routing = (m: MoeConfig) => `${m.unit}-routed MoE (${m.experts} experts, top ${m.top}, layers ${m.layers.join(', ')}${m.unit === 'sequence' ? `, prefix ${m.prefix}, z-loss ${m.zloss}` : ''})`;

export async function trackSection(gpu: Gpu, steps = 300): Promise<void> {
  const s = trackSpec;
  const run = (moe: MoeConfig | null): TrackRun => ({ spec: s, moe, export: moe?.unit === 'sequence', steps, lr: 1e-3, warmup: 20, seed: 5 });
  const { lr, warmup } = run(null);
  console.log(`\n## training tracks PyTorch at a larger size (${s.layers} layers × ${s.width}, ${s.heads} heads, vocab ${s.vocab}, context ${s.context}, batch ${s.batch}; ${steps} AdamW steps, lr ${lr}, warm-up ${warmup}, cosine, wd ${s.wd}, clip ${s.clip})\n`);
  const skip = await torchSkipReason();
  if (skip) {
    console.log(`skipped: ${skip}`);
    return;
  }
  console.log('| model | loss step 1 → last (PyTorch) | max \\|Δloss\\| (step) | max relative | at the last step | moec s | PyTorch s |');
  console.log('|---|---|---|---|---|---:|---:|');
  for (const moe of [null, tokenMoe, seqMoe]) {
    const r = run(moe);
    const name = moe ? routing(moe) : 'dense';
    let t0 = performance.now();
    const ours = await moecTrack(gpu, r);
    const moecS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const theirs = (await torchTrack(r, ours, {}, 2))!;
    const torchS = (performance.now() - t0) / 1000;
    const d = drift(ours.losses, theirs);
    const last = theirs.length - 1;
    console.log(`| ${name} | ${theirs[0]!.toFixed(4)} → ${theirs[last]!.toFixed(4)} | ${d.maxAbs.toExponential(2)} (${d.worstStep + 1}) | ${d.maxRel.toExponential(2)} | ${d.lastAbs.toExponential(2)} (${d.lastRel.toExponential(2)}) | ${moecS.toFixed(1)} | ${torchS.toFixed(1)} |`);
  }
}
