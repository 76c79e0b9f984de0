// CPU reference for the patch model of Chen et al. 2022 ("Towards Understanding Mixture of Experts in
// Deep Learning", section 3), the model of the synthetic cluster task. A sample x has P patches
// x_p ∈ R^D and a label y = ±1.
//
//   router   h_m(x) = Σ_p <θ_m, x_p>                 (θ: D×M, trained unless frozen)
//   choice   m* = argmax_m h_m(x) + r_m               (r: router noise while training, else 0)
//   gate     π = softmax(h), g = π_{m*}               (the clean logits, as in the paper)
//   expert   f_m(x) = Σ_p Σ_j σ(<w_{m,j}, x_p>)       (W: M×J×D, σ linear, cubic, relu or gelu)
//   output   F(x) = g · f_{m*}(x);  loss = log(1 + exp(−y F(x)))
//
// A single model (no router) has M = 1 and g = 1. Auxiliary losses on the router: Switch load
// balancing λ_b · M · Σ_m frac_m · P_m and the z-loss λ_z · mean (logsumexp h)². Everything here is
// what the kernels in compiler/kernels/clusters.ts compute, in f64.
import { dropoutKey } from './dropout.js';
import { activate, activationGrad, routerNoiseAt, STAT, statsLength } from './moe.js';

export type PatchActivation = 'linear' | 'gelu' | 'relu' | 'cubic';

export interface PatchModelShape {
  batch: number;
  patches: number;
  dim: number;
  /** Experts M (1 and `routed` false: the single model). */
  experts: number;
  /** Filters J per expert. */
  filters: number;
  act: PatchActivation;
  routed: boolean;
  noise: number;
  noiseDist: 'gaussian' | 'uniform';
  /** Separates this model's noise stream from other consumers of the rng block. */
  salt: number;
  balance: number;
  zloss: number;
  /** Clusters of the data (rows of the evaluation's dispatch table). */
  clusters: number;
}

/** Per-sample results the forward kernel packs into one row of the `state` buffer. */
export const PATCH_STATE = { sel: 0, gate: 1, f: 2, out: 3, loss: 4, lse: 5, probs: 6 } as const;
export const patchStateWidth = (s: Pick<PatchModelShape, 'experts'>) => PATCH_STATE.probs + s.experts;

export const sigma = (a: PatchActivation, x: number) => (a === 'linear' ? x : activate(a, x));
export const sigmaGrad = (a: PatchActivation, x: number) => (a === 'linear' ? 1 : activationGrad(a, x));

/** Router noise r for sample b, expert m: the hash stream of the transformer router's noise. */
export function patchNoise(s: PatchModelShape, seed: number, step: number, b: number, m: number): number {
  return routerNoiseAt(dropoutKey(seed, step, s.salt), b * s.experts + m, s.noise, s.noiseDist);
}

/** log(1 + e^z) without overflow. */
export const softplus = (z: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
export const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export interface PatchForward {
  sel: Uint32Array;
  /** Softmax of the clean router logits, B×M (all ones for the single model). */
  probs: Float64Array;
  lse: Float64Array;
  gate: Float64Array;
  /** f_{m*}(x) per sample. */
  f: Float64Array;
  out: Float64Array;
  loss: Float64Array;
  /** <w_{m*,j}, x_p>, B×P×J. */
  pre: Float64Array;
}

export function patchForward(s: PatchModelShape, theta: Float32Array, W: Float32Array, x: Float32Array, y: Float32Array, rng: { seed: number; step: number; train: boolean }): PatchForward {
  const { batch: B, patches: P, dim: D, experts: M, filters: J } = s;
  const r: PatchForward = {
    sel: new Uint32Array(B), probs: new Float64Array(B * M), lse: new Float64Array(B), gate: new Float64Array(B),
    f: new Float64Array(B), out: new Float64Array(B), loss: new Float64Array(B), pre: new Float64Array(B * P * J),
  };
  for (let b = 0; b < B; b++) {
    const xb = (p: number, d: number) => x[(b * P + p) * D + d]!;
    let sel = 0;
    if (s.routed) {
      const h = new Array<number>(M).fill(0);
      for (let m = 0; m < M; m++) for (let p = 0; p < P; p++) for (let d = 0; d < D; d++) h[m]! += xb(p, d) * theta[d * M + m]!;
      let best = -Infinity;
      for (let m = 0; m < M; m++) {
        const v = h[m]! + (rng.train && s.noise > 0 ? patchNoise(s, rng.seed, rng.step, b, m) : 0);
        if (v > best) { best = v; sel = m; }
      }
      const mx = Math.max(...h);
      const sum = h.reduce((a, v) => a + Math.exp(v - mx), 0);
      for (let m = 0; m < M; m++) r.probs[b * M + m] = Math.exp(h[m]! - mx) / sum;
      r.lse[b] = mx + Math.log(sum);
      r.gate[b] = r.probs[b * M + sel]!;
    } else {
      r.probs.fill(1, b * M, b * M + M);
      r.gate[b] = 1;
    }
    r.sel[b] = sel;
    let f = 0;
    for (let p = 0; p < P; p++) {
      for (let j = 0; j < J; j++) {
        let a = 0;
        for (let d = 0; d < D; d++) a += W[(sel * J + j) * D + d]! * xb(p, d);
        r.pre[(b * P + p) * J + j] = a;
        f += sigma(s.act, a);
      }
    }
    r.f[b] = f;
    r.out[b] = r.gate[b]! * f;
    r.loss[b] = softplus(-y[b]! * r.out[b]!);
  }
  return r;
}

/** The statistics block of a routed layer (STAT layout of the transformer MoE layers). */
export function patchStats(s: PatchModelShape, fw: PatchForward): Float32Array {
  const { batch: B, experts: M } = s;
  const st = new Float32Array(statsLength(M));
  const P = new Array<number>(M).fill(0);
  let z = 0;
  let ent = 0;
  for (let b = 0; b < B; b++) {
    st[STAT.counts + fw.sel[b]!]! += 1;
    for (let m = 0; m < M; m++) {
      const p = fw.probs[b * M + m]!;
      P[m]! += p / B;
      if (p > 0) ent -= p * Math.log(p) / B;
    }
    z += fw.lse[b]! ** 2 / B;
  }
  let bal = 0;
  for (let m = 0; m < M; m++) {
    st[STAT.counts + M + m] = P[m]!;
    bal += (st[STAT.counts + m]! / B) * P[m]!;
  }
  st[STAT.balance] = M * bal;
  st[STAT.z] = z;
  st[STAT.entropy] = ent;
  return st;
}

/** Mean task loss plus the weighted auxiliary losses: what 'train_loss' holds after a step. */
export function patchTrainLoss(s: PatchModelShape, fw: PatchForward): number {
  const task = fw.loss.reduce((a, v) => a + v, 0) / s.batch;
  if (!s.routed) return task;
  const st = patchStats(s, fw);
  return task + s.balance * st[STAT.balance]! + s.zloss * st[STAT.z]!;
}

/** d(train loss)/d(router logits), B×M: through the gate, the balance loss and the z-loss. */
export function patchLogitGrads(s: PatchModelShape, fw: PatchForward, y: Float32Array): Float64Array {
  const { batch: B, experts: M } = s;
  const dh = new Float64Array(B * M);
  const st = patchStats(s, fw);
  const frac = Array.from({ length: M }, (_, m) => st[STAT.counts + m]! / B);
  for (let b = 0; b < B; b++) {
    const dF = (-y[b]! * sigmoid(y[b]! * -fw.out[b]!)) / B;
    const sel = fw.sel[b]!;
    const fp = frac.reduce((a, v, i) => a + v * fw.probs[b * M + i]!, 0);
    for (let m = 0; m < M; m++) {
      const p = fw.probs[b * M + m]!;
      let g = dF * fw.f[b]! * fw.gate[b]! * ((m === sel ? 1 : 0) - p);
      g += ((s.balance * M) / B) * p * (frac[m]! - fp);
      g += ((s.zloss * 2) / B) * fw.lse[b]! * p;
      dh[b * M + m] = g;
    }
  }
  return dh;
}

/** Gradients of the train loss: dθ (D×M, zero for the single model) and dW (M×J×D). */
export function patchBackward(s: PatchModelShape, fw: PatchForward, x: Float32Array, y: Float32Array): { dtheta: Float64Array; dW: Float64Array } {
  const { batch: B, patches: P, dim: D, experts: M, filters: J } = s;
  const dW = new Float64Array(M * J * D);
  const dtheta = new Float64Array(D * M);
  const dh = s.routed ? patchLogitGrads(s, fw, y) : null;
  for (let b = 0; b < B; b++) {
    const dF = (-y[b]! * sigmoid(-y[b]! * fw.out[b]!)) / B;
    const m = fw.sel[b]!;
    for (let p = 0; p < P; p++) {
      for (let j = 0; j < J; j++) {
        const g = dF * fw.gate[b]! * sigmaGrad(s.act, fw.pre[(b * P + p) * J + j]!);
        for (let d = 0; d < D; d++) dW[(m * J + j) * D + d]! += g * x[(b * P + p) * D + d]!;
      }
    }
    if (dh) {
      for (let d = 0; d < D; d++) {
        let xs = 0;
        for (let p = 0; p < P; p++) xs += x[(b * P + p) * D + d]!;
        for (let e = 0; e < M; e++) dtheta[d * M + e]! += dh[b * M + e]! * xs;
      }
    }
  }
  return { dtheta, dW };
}

/** The evaluation accumulator: [Σ loss, samples, correct, then clusters × experts dispatch counts]. */
export const evalLength = (s: PatchModelShape) => 3 + s.clusters * s.experts;

/** Samples with y = 0 are padding (a short last batch) and not counted. */
export function patchEvalAdd(s: PatchModelShape, fw: PatchForward, y: Float32Array, cluster: Uint32Array, acc: Float64Array): void {
  for (let b = 0; b < s.batch; b++) {
    if (y[b] === 0) continue;
    acc[0]! += fw.loss[b]!;
    acc[1]! += 1;
    if (y[b]! * fw.out[b]! > 0) acc[2]! += 1;
    acc[3 + cluster[b]! * s.experts + fw.sel[b]!]! += 1;
  }
}
