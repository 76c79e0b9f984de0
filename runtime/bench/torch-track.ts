// A whole short training run in moec and in PyTorch (runtime/bench/torch/track.py) from the same
// initial weights, on the same batches, with the same AdamW schedule, clipping and weight decay:
// the per-step loss curves and their drift. Shared by the tracking test and `npm run bench -- --only torch-track`.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MoeConfig } from '../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../compiler/graph/gpt2.js';
import { moeBlock } from '../../compiler/graph/moe.js';
import { compileGpt2 } from '../../compiler/lower/compile.js';
import { rng } from '../../compiler/reference/random.js';
import type { Gpu } from '../gpu/device.js';
import { writeSafetensors } from '../store/safetensors.js';
import { GpuModel } from '../train/model.js';
import { lrAt } from '../train/schedule.js';
import { benchScript, torchPython, torchWidths, type TorchModel } from './torch.js';

export interface TrackRun {
  spec: Gpt2Spec;
  /** The MoE settings, or null for the dense model. */
  moe: MoeConfig | null;
  /**
   * Train the PyTorch side with the export's modeling_moec.py (every sparse routing design) rather
   * than bench/torch/model.py (token routing only); its weights keep moec's stacked-expert names.
   */
  export?: boolean;
  steps: number;
  lr: number;
  warmup: number;
  seed: number;
}

export interface TrackData {
  /** Step-0 weights in PyTorch's names (one tensor per expert). */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  /** Per step: B·T inputs then B·T targets. */
  batches: Uint32Array;
  lrs: number[];
  losses: number[];
}

/**
 * The token-routed MoE both the tracking test and the bench train (each overrides its size): 4
 * experts, top 2, renormalised softmax gates, dropless, balance 0.01, in layers 0 and 1.
 */
export const trackMoe: MoeConfig = {
  every: 1, experts: 4, top: 2, unit: 'token', prefix: null, scope: 'layer', router: 'learned', label: null, dim: 32,
  gate: 'softmax-topk', normalize: true, noise: 0, noiseDist: 'gaussian', capacity: 1.25, dropless: true, balance: 0.01, zloss: 0, shared: 0,
  expert: 'mlp', activation: 'gelu', second: 'top', dispatch: 'sparse', slots: 1, layers: [0, 1],
};

/** The learning rate of each step: warm-up then cosine to 0.1·lr (moec's schedule). */
export function trackLrs(r: TrackRun): number[] {
  return Array.from({ length: r.steps }, (_, s) => lrAt(s, { lr: r.lr, warmup: r.warmup, schedule: 'cosine', minLr: 0.1, steps: r.steps }));
}

/**
 * Learnable batches: each sequence follows t → (3t + 1) mod V from a random start, with 10% of
 * tokens replaced at random, so the loss falls well below ln V within 100 steps.
 */
export function trackBatches(spec: Gpt2Spec, steps: number, seed: number): Uint32Array {
  const { batch: B, context: T, vocab: V } = spec;
  const r = rng(seed);
  const out = new Uint32Array(steps * 2 * B * T);
  for (let s = 0; s < steps; s++) {
    const base = s * 2 * B * T;
    for (let b = 0; b < B; b++) {
      let t = Math.floor(r() * V);
      for (let i = 0; i <= T; i++) {
        const tok = r() < 0.1 ? Math.floor(r() * V) : t;
        if (i < T) out[base + b * T + i] = tok;
        if (i > 0) out[base + B * T + b * T + i - 1] = tok;
        t = (3 * tok + 1) % V;
      }
    }
  }
  return out;
}

/** moec name and stacked (E, …) data → PyTorch's per-expert tensors. */
export function unstack(name: string, shape: number[], data: Float32Array): [string, { shape: number[]; data: Float32Array }][] {
  const m = /^h\.(\d+)\.mlp\.experts\.(c_fc|c_proj)\.(weight|bias)$/.exec(name);
  if (!m) return [[name, { shape, data }]];
  const [E, ...rest] = shape as [number, ...number[]];
  const per = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: E }, (_, e) => [`h.${m[1]}.mlp.experts.${e}.${m[2]}.${m[3]}`, { shape: rest, data: data.slice(e * per, (e + 1) * per) }]);
}

/** Trains `r` in moec on `gpu`, reading the loss back after every step. */
export async function moecTrack(gpu: Gpu, r: TrackRun): Promise<TrackData> {
  if (r.spec.dropout !== 0) throw new Error('tracking needs dropout 0: moec and PyTorch cannot draw the same masks');
  if (r.moe && r.moe.unit !== 'token' && !r.export) throw new Error(`runtime/bench/torch/model.py routes tokens only: track moe.unit ${r.moe.unit} with export: true`);
  if (r.moe?.dispatch === 'soft') throw new Error('soft MoE has no PyTorch model to track against');
  const compiled = r.moe ? compileGpt2(r.spec, moeBlock(r.spec, r.moe)) : compileGpt2(r.spec);
  const m = await GpuModel.create(gpu, compiled);
  try {
    m.initParams(r.seed);
    const params = [...(await m.readParams())];
    const weights = new Map(r.export ? params.map(([name, data]) => [name, { shape: compiled.graph.get(name).shape, data }])
      : params.flatMap(([name, data]) => unstack(name, compiled.graph.get(name).shape, data)));
    const batches = trackBatches(r.spec, r.steps, r.seed + 1);
    const lrs = trackLrs(r);
    const n = r.spec.batch * r.spec.context;
    const losses: number[] = [];
    for (let s = 0; s < r.steps; s++) {
      const at = s * 2 * n;
      m.trainStep(s + 1, lrs[s]!, 0, [{ tokens: batches.subarray(at, at + n), targets: batches.subarray(at + n, at + 2 * n) }]);
      losses.push(await m.trainLoss());
    }
    return { weights, batches, lrs, losses };
  } finally {
    m.destroy();
  }
}

export function trackTorchModel(r: TrackRun): TorchModel {
  const s = r.spec;
  return {
    layers: s.layers, width: s.width, heads: s.heads, ffn: s.ffn, vocab: s.vocab, context: s.context, dropout: 0,
    moe: r.moe && { experts: r.moe.experts, top: r.moe.top, layers: r.moe.layers, normalize: r.moe.normalize, balance: r.moe.balance, ...torchWidths(r.moe) },
  };
}

/** Deliberate errors in the PyTorch run, to show the comparison catches them. */
export interface TrackBreak {
  /** Weight decay on every tensor, LayerNorm gains and biases included. */
  decayAll?: boolean;
  /** The schedule one step late: step s uses the learning rate of step s − 1. */
  lrLate?: boolean;
  /** Each tensor clipped to its own norm instead of the global norm. */
  clipPerTensor?: boolean;
  /** Adam without bias correction. */
  noBiasCorrection?: boolean;
  /** The load-balancing loss dropped. */
  noBalance?: boolean;
}

/** The same run in PyTorch (track.py); null when no Python with torch is found. */
export async function torchTrack(r: TrackRun, data: TrackData, broken: TrackBreak = {}, threads = 1): Promise<number[] | null> {
  const py = await torchPython();
  if (!py) return null;
  const dir = mkdtempSync(join(tmpdir(), 'moec-track-'));
  try {
    const model = trackTorchModel(r);
    if (broken.noBalance && model.moe) model.moe = { ...model.moe, balance: 0 };
    const lrs = broken.lrLate ? [data.lrs[0]!, ...data.lrs.slice(0, -1)] : data.lrs;
    const w = join(dir, 'weights.safetensors');
    writeSafetensors(w, data.weights);
    const b = join(dir, 'batches.bin');
    writeFileSync(b, data.batches);
    const c = join(dir, 'config.json');
    writeFileSync(c, JSON.stringify({ model, batch: r.spec.batch, lrs, wd: r.spec.wd, betas: r.spec.betas, eps: r.spec.eps, clip: r.spec.clip, export: r.export && r.moe ? { ...r.moe, balance: broken.noBalance ? 0 : r.moe.balance } : null, break: broken.decayAll ? 'decay-all' : broken.clipPerTensor ? 'clip-per-tensor' : broken.noBiasCorrection ? 'no-bias-correction' : null }));
    const out = join(dir, 'out.json');
    const script = join(benchScript(), '..', 'track.py');
    await new Promise<void>((resolve, reject) => {
      execFile(py, [script, w, b, c, out], { timeout: 600_000, env: { ...process.env, MOEC_TORCH_THREADS: String(threads) } }, (error, _stdout, stderr) =>
        error ? reject(new Error(`track.py failed: ${stderr.trim().split('\n').slice(-5).join('\n') || error.message}`)) : resolve());
    });
    return (JSON.parse(readFileSync(out, 'utf8')) as { losses: number[] }).losses;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Drift {
  /** max over steps of |moec − torch|. */
  maxAbs: number;
  /** max over steps of |moec − torch| / |torch|. */
  maxRel: number;
  /** The step (0-based) where maxAbs is reached. */
  worstStep: number;
  lastAbs: number;
  lastRel: number;
}

export function drift(ours: number[], theirs: number[]): Drift {
  if (ours.length !== theirs.length) throw new Error(`${ours.length} moec steps vs ${theirs.length} PyTorch steps`);
  let maxAbs = 0;
  let maxRel = 0;
  let worstStep = 0;
  ours.forEach((a, i) => {
    const d = Math.abs(a - theirs[i]!);
    if (!(d <= maxAbs)) [maxAbs, worstStep] = [d, i];
    maxRel = Math.max(maxRel, d / Math.abs(theirs[i]!));
  });
  const last = ours.length - 1;
  const lastAbs = Math.abs(ours[last]! - theirs[last]!);
  return { maxAbs, maxRel, worstStep, lastAbs, lastRel: lastAbs / Math.abs(theirs[last]!) };
}
