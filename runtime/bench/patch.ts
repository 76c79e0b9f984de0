// The patch model of the cluster task (Chen et al. 2022) as the paper trains it: full-batch steps
// (forward, backward, NGD on the experts, SGD on the router) of 8 cubic experts × 16 filters over
// 4 patches of dimension 50, against the same model and step in PyTorch on this machine, in one run.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline, type TrialConfig } from '../../compiler/frontend/index.js';
import { compileTrial } from '../../compiler/lower/compile.js';
import { FullBatcher, prepareClusters } from '../data/index.js';
import type { Gpu } from '../gpu/device.js';
import { PatchModel } from '../train/patch-model.js';
import { torchPython, torchSkipReason } from './torch.js';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../runtime/bench/torch/patch.py');

/** The paper's MoE (setting 1's data) with `train` training samples per full-batch step. */
export function chenTrial(train: number, act: 'cubic' | 'linear' = 'cubic'): TrialConfig {
  const text = `data s1 {
  source clusters
  valid 50%
  synthetic { clusters 4; patches 4; dim 50; noise 0.1414; feature [0.5, 2]; centre [1, 2]; distractor [0.5, 3]; scale 10; samples ${2 * train} }
}
model moe {
  ffn 16
  moe { experts 8; top 1; router learned; noise 1; noise-dist uniform; balance 0; expert ${act === 'cubic' ? 'mlp' : 'linear'}; activation cubic; init fan-in; init-scale 0.001 }
}
train { steps 500; full-batch true; optimizer ngd; lr 0.001; router-lr 0.1; schedule constant; wd 0 }
`;
  const r = loadPipeline('bench-patch.moe', { readFile: () => text });
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.trials[0]!.config;
}

export interface PatchBench { samplesPerSec: number; msPerStep: number; steps: number; profile?: { kernel: string; share: number }[] }

export async function benchPatchStep(gpu: Gpu, train: number, minSeconds = 3): Promise<PatchBench> {
  const cfg = chenTrial(train);
  const compiled = compileTrial(cfg, 'bench-patch');
  const data = prepareClusters(cfg.data['s1']!, 0);
  const m = await PatchModel.create(gpu, compiled, 'bench patch');
  try {
    m.initParams(1);
    const batcher = new FullBatcher(data.train);
    let step = 0;
    const run = (n: number) => { for (let i = 0; i < n; i++) m.trainStep(++step, 1e-3, 1, batcher.next()); };
    run(2);
    await m.trainLoss();
    let t0 = performance.now();
    run(1);
    await m.trainLoss();
    const one = Math.max(1e-3, (performance.now() - t0) / 1000);
    const n = Math.max(3, Math.ceil(minSeconds / one));
    t0 = performance.now();
    run(n);
    await m.trainLoss();
    const secs = (performance.now() - t0) / 1000;
    const prof = await m.ex.profile('train_step', 2);
    const total = prof?.reduce((a, p) => a + p.ms, 0) ?? 0;
    return {
      samplesPerSec: (n * train) / secs, msPerStep: (1000 * secs) / n, steps: n,
      ...(prof && total > 0 ? { profile: prof.map((p) => ({ kernel: p.kernel, share: p.ms / total })).sort((a, b) => b.share - a.share) } : {}),
    };
  } finally {
    m.destroy();
  }
}

interface TorchPatch { samples_per_s: number; ms_per_step: number; steps: number; threads: number; torch: string }

/** The same step in PyTorch (runtime/bench/torch/patch.py), or why it was skipped. */
export async function torchPatchStep(train: number, minSeconds = 3): Promise<TorchPatch | { skipped: string }> {
  const py = await torchPython();
  if (!py) return { skipped: (await torchSkipReason())! };
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-patch-bench-'));
  try {
    const cfg = path.join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify({ samples: train, patches: 4, dim: 50, experts: 8, filters: 16, min_seconds: minSeconds, lr: 1e-3, router_lr: 0.1 }));
    const out = await new Promise<string>((resolve, reject) => execFile(py, [script, cfg], { timeout: 600_000, maxBuffer: 1 << 20 }, (e, stdout, stderr) => (e ? reject(new Error(`${script}: ${stderr || e.message}`)) : resolve(stdout))));
    return JSON.parse(out.trim().split('\n').pop()!) as TorchPatch;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function patchBench(gpu: Gpu): Promise<void> {
  console.log(`\n## patch model step (Chen et al. 2022: 8 cubic experts × 16 filters, 4 patches × 50, full batch, NGD experts + SGD router)\n`);
  console.log('| training samples per step | moec samples/s | moec ms/step | PyTorch samples/s | PyTorch ms/step | moec / PyTorch |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  const notes: string[] = [];
  for (const n of [16000, 2000]) {
    const r = await benchPatchStep(gpu, n);
    const t = await torchPatchStep(n);
    const cols = 'skipped' in t ? '— | — | —' : `${t.samples_per_s.toFixed(0)} | ${t.ms_per_step.toFixed(2)} | ${(r.samplesPerSec / t.samples_per_s).toFixed(2)}×`;
    if ('skipped' in t) notes.push(`PyTorch skipped: ${t.skipped}`);
    else notes.push(`PyTorch ${t.torch}, ${t.threads} threads, ${t.steps} timed steps at ${n}`);
    console.log(`| ${n} | ${r.samplesPerSec.toFixed(0)} | ${r.msPerStep.toFixed(2)} | ${cols} |`);
    if (r.profile) notes.push(`where moec's step at ${n} goes (GPU time per kernel): ${r.profile.map((p) => `${p.kernel} ${(100 * p.share).toFixed(0)}%`).join(', ')}`);
  }
  console.log(`\n${notes.map((x) => `- ${x}`).join('\n')}`);
}
