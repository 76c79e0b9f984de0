// CPU references for the MoE kernels (compiler/kernels/moe-*.ts). They follow the kernels' order
// of operations closely enough that routing decisions (top-k, capacity) agree exactly and values
// agree to f32 rounding. Notation: N token rows, C width, E experts, K experts per token, F expert
// hidden width, R routing rows (N for token routing, N / rep for sequence routing, where `rep`
// tokens share one decision). An assignment a = n·K + k is token n's k-th choice; a slot is a row
// of the expert-contiguous (gathered) order.

import { assignmentCount, assignmentOf, NO_SLOT, type SlotLayout, tokenOf } from '../routing/slots.js';
import { dropoutHash, dropoutKey } from './dropout.js';
import { gelu, geluGrad } from '../kernels/activation.js';

export { NO_SLOT } from '../routing/slots.js';

/** The routing shape every MoE kernel shares. */
export interface MoeRouting {
  /** Token rows N. */
  tokens: number;
  experts: number;
  /** Experts per token K (1..experts). */
  top: number;
  /** Tokens per routing row: 1 (token routing) or the context length (sequence routing). */
  rep: number;
}

export interface MoeRouterShape extends MoeRouting {
  /**
   * 'logits': top-k of router logits (scoring routers); any other mode is the name of a router kind
   * that follows a fixed rule (random, label, ...: compiler/routing), which brings its kernel body
   * and reference.
   */
  mode: 'logits' | (string & {});
  /** Gate score: softmax over all experts, or an independent sigmoid per expert. */
  score: 'softmax' | 'sigmoid';
  /** Renormalise the K kept scores to sum to 1 (topk-softmax is softmax with this on). */
  normalize: boolean;
  /** Distinguishes the random routers of different layers (as dropout's salt). */
  salt: number;
  /** Tokens per label (the context length), for mode 'label'. */
  seqLen: number;
  /** GShard: while training, choices after the first are sampled in proportion to their scores. */
  sampled?: boolean;
  /**
   * Auxiliary-loss-free balancing: the top-k picks the largest score + bias[e] (a per-expert bias,
   * compiler/kernels/moe-bias.ts), the gates stay the unbiased scores.
   */
  biased?: boolean;
}

export const routingRows = (s: MoeRouting) => s.tokens / s.rep;

/** Stats tensor layout (f32): balance, z, dropped fraction, entropy, E routed counts, E mean scores. */
export const STAT = { balance: 0, z: 1, dropped: 2, entropy: 3, counts: 4 } as const;
export const statsLength = (experts: number) => 4 + 2 * experts;

/** One routing row's softmax, its log-sum-exp, and the gate scores. */
function rowScores(logits: Float32Array, r: number, E: number, score: 'softmax' | 'sigmoid') {
  const l = Array.from(logits.subarray(r * E, r * E + E));
  const m = Math.max(...l);
  const ex = l.map((v) => Math.exp(v - m));
  const sum = ex.reduce((a, b) => a + b, 0);
  const p = ex.map((v) => v / sum);
  const sc = score === 'softmax' ? p : l.map((v) => 1 / (1 + Math.exp(-v)));
  return { l, p, sc, lse: m + Math.log(sum) };
}

/** Router forward of a scoring router (mode 'logits'): the selected experts `sel` (N·K) and their gates (N·K). */
export function moeRouterReference(
  s: MoeRouterShape,
  inputs: { logits?: Float32Array; seed?: number; step?: number; train?: boolean; bias?: Float32Array },
): { sel: Uint32Array; gate: Float32Array } {
  const { tokens: N, experts: E, top: K } = s;
  const sel = new Uint32Array(N * K);
  const gate = new Float32Array(N * K);
  if (s.mode !== 'logits') throw new Error(`router mode '${s.mode}': its reference is its router kind's (compiler/routing)`);
  if (s.biased && !inputs.bias) throw new Error('a biased router needs its bias');
  const key = dropoutKey(inputs.seed ?? 0, inputs.step ?? 0, s.salt);
  for (let n = 0; n < N; n++) {
    const r = Math.floor(n / s.rep);
    const { l: logit, sc } = rowScores(inputs.logits!, r, E, s.score);
    // Unbiased: the top-k by logit (the score's order); biased: by f32(score + bias).
    const l = s.biased ? sc.map((v, e) => Math.fround(Math.fround(v) + inputs.bias![e]!)) : logit;
    const taken = new Set<number>();
    const g: number[] = [];
    for (let k = 0; k < K; k++) {
      let best = -1;
      for (let e = 0; e < E; e++) if (!taken.has(e) && (best < 0 || l[e]! > l[best]!)) best = e;
      if (s.sampled && k > 0 && inputs.train) {
        const rest = sc.reduce((a, v, e) => a + (taken.has(e) ? 0 : v), 0);
        let left = ((dropoutHash(key, r * K + k) >>> 8) / 16777216) * rest;
        for (let e = 0; e < E; e++) {
          if (taken.has(e)) continue;
          best = e;
          left -= sc[e]!;
          if (left < 0) break;
        }
      }
      taken.add(best);
      sel[assignmentOf({ top: K }, n, k)] = best;
      g.push(sc[best]!);
    }
    const tot = g.reduce((a, b) => a + b, 0);
    g.forEach((v, k) => { gate[assignmentOf({ top: K }, n, k)] = s.normalize ? v / tot : v; });
  }
  return { sel, gate };
}

/**
 * Dispatch: assignments in priority order (all first choices, then all second choices, ... each in
 * token order) fill their expert's `capacity` slots; the rest are dropped. Slots are
 * expert-contiguous: expert e owns slots offsets[e] .. offsets[e+1].
 */
export function moeDispatchReference(
  s: MoeRouting & { capacity: number; score: 'softmax' | 'sigmoid' },
  sel: Uint32Array,
  logits: Float32Array | null,
): { offsets: Uint32Array; perm: Uint32Array; pos: Uint32Array; stats: Float32Array } {
  const { tokens: N, experts: E, top: K } = s;
  const NK = N * K;
  const counts = new Array<number>(E).fill(0);
  for (let a = 0; a < NK; a++) counts[sel[a]!]!++;
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e]! + Math.min(counts[e]!, s.capacity);
  const perm = new Uint32Array(NK);
  const pos = new Uint32Array(NK).fill(NO_SLOT);
  const rank = new Array<number>(E).fill(0);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const a = assignmentOf({ top: K }, n, k);
      const e = sel[a]!;
      const r = rank[e]!++;
      if (r < s.capacity) {
        pos[a] = offsets[e]! + r;
        perm[pos[a]!] = a;
      }
    }
  }
  const stats = new Float32Array(statsLength(E));
  counts.forEach((c, e) => { stats[STAT.counts + e] = c; });
  stats[STAT.dropped] = (NK - offsets[E]!) / NK;
  if (logits) {
    const P = new Array<number>(E).fill(0);
    let z = 0;
    let ent = 0;
    for (let n = 0; n < N; n++) {
      const { p, sc, lse } = rowScores(logits, Math.floor(n / s.rep), E, s.score);
      sc.forEach((v, e) => { P[e]! += v; });
      z += lse * lse;
      ent -= p.reduce((a, v) => a + (v > 0 ? v * Math.log(v) : 0), 0);
    }
    let bal = 0;
    P.forEach((v, e) => {
      stats[STAT.counts + E + e] = v / N;
      bal += (counts[e]! / NK) * (v / N);
    });
    stats[STAT.balance] = E * bal;
    stats[STAT.z] = z / N;
    stats[STAT.entropy] = ent / N;
  }
  return { offsets, perm, pos, stats };
}

/** How a grouped matmul finds its operands: see groupedMatmulKernel. */
export interface GroupedMatmulShape {
  /** Slot rows the output can hold (N·K). */
  rows: number;
  /** Output columns and the contracted dimension. */
  n: number;
  k: number;
  experts: number;
  /** A's row for slot s is the token of assignment perm[s] (the gather), else slot s. */
  gather?: SlotLayout;
  /** B[e] is stored n×k (C = A·B[e]ᵀ) instead of k×n. */
  transB?: boolean;
  bias?: boolean;
  activation?: 'none' | ExpertActivation;
  /** Also write the pre-activation into a second output (the backward needs it). */
  savePre?: boolean;
  /** Multiply the result by act'(H) element-wise (the activation's backward, fused). */
  actGrad?: ExpertActivation;
}

export type ExpertActivation = 'gelu' | 'relu' | 'cubic';

export { geluGrad };

export const activate = (a: ExpertActivation, x: number) => (a === 'gelu' ? gelu(x) : a === 'relu' ? Math.max(x, 0) : x * x * x);
export const activationGrad = (a: ExpertActivation, x: number) => (a === 'gelu' ? geluGrad(x) : a === 'relu' ? (x > 0 ? 1 : 0) : 3 * x * x);

const expertOf = (offsets: Uint32Array, s: number) => {
  let e = 0;
  while (offsets[e + 1]! <= s) e++;
  return e;
};

/** Rows ≥ offsets[E] of the outputs are left as they were (the kernel never writes them). */
export function groupedMatmulReference(
  g: GroupedMatmulShape,
  io: { A: Float32Array; B: Float32Array; offsets: Uint32Array; perm?: Uint32Array; bias?: Float32Array; H?: Float32Array; C: Float32Array; pre?: Float32Array },
): void {
  const { n: Nc, k: Kc, experts: E } = g;
  for (let s = 0; s < io.offsets[E]!; s++) {
    const e = expertOf(io.offsets, s);
    const row = g.gather ? tokenOf(g.gather, io.perm![s]!) : s;
    for (let c = 0; c < Nc; c++) {
      let acc = 0;
      for (let k = 0; k < Kc; k++) {
        const b = g.transB ? io.B[e * Nc * Kc + c * Kc + k]! : io.B[e * Kc * Nc + k * Nc + c]!;
        acc += io.A[row * Kc + k]! * b;
      }
      if (g.bias) acc += io.bias![e * Nc + c]!;
      if (io.pre) io.pre[s * Nc + c] = acc;
      if (g.activation && g.activation !== 'none') acc = activate(g.activation, acc);
      if (g.actGrad) acc *= activationGrad(g.actGrad, io.H![s * Nc + c]!);
      io.C[s * Nc + c] = acc;
    }
  }
}

/** dW[e] += Σ_{slots s of e} A[row(s)]ᵀ · D[s]  (dW[e] is k×n); db[e] += Σ D[s]. */
export function groupedWeightGradReference(
  g: { k: number; n: number; experts: number; gather?: SlotLayout },
  io: { A: Float32Array; D: Float32Array; offsets: Uint32Array; perm?: Uint32Array; dW: Float32Array; db?: Float32Array },
): void {
  const { k: Kc, n: Nc, experts: E } = g;
  for (let e = 0; e < E; e++) {
    for (let s = io.offsets[e]!; s < io.offsets[e + 1]!; s++) {
      const row = g.gather ? tokenOf(g.gather, io.perm![s]!) : s;
      for (let i = 0; i < Kc; i++) for (let c = 0; c < Nc; c++) io.dW[e * Kc * Nc + i * Nc + c]! += io.A[row * Kc + i]! * io.D[s * Nc + c]!;
      if (io.db) for (let c = 0; c < Nc; c++) io.db[e * Nc + c]! += io.D[s * Nc + c]!;
    }
  }
}

/** out[n] = Σ_k gate[n,k] · Y[pos[n,k]] over kept assignments (gate = 1 when `gate` is null). */
export function combineReference(N: number, C: number, K: number, Y: Float32Array, gate: Float32Array | null, pos: Uint32Array): Float32Array {
  const out = new Float32Array(N * C);
  const slots: SlotLayout = { top: K };
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const a = assignmentOf(slots, n, k);
      const s = pos[a]!;
      if (s === NO_SLOT) continue;
      for (let c = 0; c < C; c++) out[n * C + c]! += (gate ? gate[a]! : 1) * Y[s * C + c]!;
    }
  }
  return out;
}

/** Combine backward: dY[slot] = gate · dout[token], dgate[a] = dout[token] · Y[slot] (0 when dropped). */
export function combineBackwardReference(N: number, C: number, K: number, dout: Float32Array, Y: Float32Array, gate: Float32Array, pos: Uint32Array, dY: Float32Array): Float32Array {
  const dgate = new Float32Array(N * K);
  for (let a = 0; a < N * K; a++) {
    const s = pos[a]!;
    if (s === NO_SLOT) continue;
    const n = tokenOf({ top: K }, a);
    let d = 0;
    for (let c = 0; c < C; c++) {
      dY[s * C + c] = gate[a]! * dout[n * C + c]!;
      d += dout[n * C + c]! * Y[s * C + c]!;
    }
    dgate[a] = d;
  }
  return dgate;
}

/** The router backward's shape: the auxiliary losses' weights, and over what the balance loss is taken. */
export interface RouterLossShape extends MoeRouterShape {
  balance: number;
  zloss: number;
  /**
   * The balance loss over the micro-batch (f from the stats' counts) or per sequence of `seqLen`
   * tokens, averaged (f from each sequence's counts: reference/moe-seq-balance.ts). Absent: batch.
   */
  balanceOver?: 'batch' | 'sequence';
}

/**
 * Router backward: dL/dlogits (R×E) from the gate gradients (summed over the `rep` tokens of a
 * routing row), plus the balance loss (f treated as constant, P differentiable) and the z-loss,
 * each already multiplied by its weight (and the 1/accumulate loss scale). With balanceOver
 * 'sequence', `seqCounts` holds each sequence's assignment counts (B×E).
 */
export function routerBackwardReference(
  s: RouterLossShape,
  logits: Float32Array, sel: Uint32Array, dgate: Float32Array, stats: Float32Array, seqCounts?: Float32Array,
): Float32Array {
  const { experts: E, top: K, rep } = s;
  const R = routingRows(s);
  const slots: SlotLayout = { top: K };
  const NK = assignmentCount(slots, s.tokens);
  const dl = new Float32Array(R * E);
  for (let r = 0; r < R; r++) {
    const { p, sc, lse } = rowScores(logits, r, E, s.score);
    const dg = new Array<number>(K).fill(0);
    // The row's tokens share its choice: the first token's assignments, every token's gate gradients.
    for (let t = 0; t < rep; t++) for (let k = 0; k < K; k++) dg[k]! += dgate[assignmentOf(slots, r * rep + t, k)]!;
    const chosen = Array.from({ length: K }, (_, k) => sel[assignmentOf(slots, r * rep, k)]!);
    const dsc = new Array<number>(E).fill(0);
    const g = chosen.map((e) => sc[e]!);
    const tot = g.reduce((a, b) => a + b, 0);
    const dot = s.normalize ? g.reduce((a, v, k) => a + dg[k]! * (v / tot), 0) : 0;
    chosen.forEach((e, k) => { dsc[e] = s.normalize ? (dg[k]! - dot) / tot : dg[k]!; });
    if (s.balanceOver === 'sequence') {
      if (!seqCounts || rep !== 1) throw new Error('the sequence-wise balance loss needs token routing and the sequences\' counts');
      const b = Math.floor(r / s.seqLen);
      for (let e = 0; e < E; e++) dsc[e]! += (s.balance * E * seqCounts[b * E + e]!) / (s.seqLen * K * s.tokens);
    } else for (let e = 0; e < E; e++) dsc[e]! += (s.balance * E * (stats[STAT.counts + e]! / NK)) / R;
    const dot2 = sc.reduce((a, v, e) => a + v * dsc[e]!, 0);
    for (let e = 0; e < E; e++) {
      const d = s.score === 'softmax' ? sc[e]! * (dsc[e]! - dot2) : dsc[e]! * sc[e]! * (1 - sc[e]!);
      dl[r * E + e] = d + (s.zloss * 2 * lse * p[e]!) / R;
    }
  }
  return dl;
}

/** Mean of the first `prefix` tokens of each sequence of T tokens: (N/T)×C. */
export function poolReference(N: number, T: number, C: number, prefix: number, x: Float32Array): Float32Array {
  const B = N / T;
  const out = new Float32Array(B * C);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      let acc = 0;
      for (let t = 0; t < prefix; t++) acc += x[(b * T + t) * C + c]!;
      out[b * C + c] = acc / prefix;
    }
  }
  return out;
}

/**
 * Noisy top-k's in-place logit noise (moeRouterNoiseKernel), while training: Gaussian noise·z, or
 * uniform U(0, noise) from the first of the Gaussian's two hashes.
 */
export function routerNoiseReference(logits: Float32Array, noise: number, salt: number, seed: number, step: number, train: boolean, dist: 'gaussian' | 'uniform' = 'gaussian'): Float32Array {
  if (!train) return logits.slice();
  const key = dropoutKey(seed, step, salt);
  return logits.map((l, i) => l + routerNoiseAt(key, i, noise, dist));
}

/** The noise on logit i of the stream `key` (dropoutKey(seed, step, salt)). */
export function routerNoiseAt(key: number, i: number, noise: number, dist: 'gaussian' | 'uniform'): number {
  if (dist === 'uniform') return noise * ((dropoutHash(key, 2 * i) >>> 8) / 16777216);
  const u1 = ((dropoutHash(key, 2 * i) >>> 8) + 1) / 16777216;
  const u2 = (dropoutHash(key, 2 * i + 1) >>> 8) / 16777216;
  return noise * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Cosine router logits: cos(P_r, emb_e) · exp(logScale); P is R×D, emb D×E. */
export function cosineLogitsReference(R: number, D: number, E: number, P: Float32Array, emb: Float32Array, logScale: number): Float32Array {
  const out = new Float32Array(R * E);
  for (let r = 0; r < R; r++) {
    const pn = Math.max(Math.hypot(...P.subarray(r * D, r * D + D)), 1e-6);
    for (let e = 0; e < E; e++) {
      let dot = 0;
      let nn = 0;
      for (let d = 0; d < D; d++) {
        dot += P[r * D + d]! * emb[d * E + e]!;
        nn += emb[d * E + e]! ** 2;
      }
      out[r * E + e] = (dot / (pn * Math.max(Math.sqrt(nn), 1e-6))) * Math.exp(logScale);
    }
  }
  return out;
}
