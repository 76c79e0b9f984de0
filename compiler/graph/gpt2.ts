import type { MatmulShape } from '../reference/matmul.js';
import { dropoutBackward, dropoutForward } from '../kernels/dropout.js';
import { biasGrad, evalSum, fill, scaleAdd } from '../kernels/elementwise.js';
import { attentionBackwardDkv, attentionBackwardDq, attentionForward } from '../kernels/attention-subgroup.js';
import { embeddingForward, embeddingWpeGrad, embeddingWteGrad } from '../kernels/embedding.js';
import { layerNormBackward, layerNormForward, layerNormParamGrad } from '../kernels/layernorm.js';
import { matmul } from '../kernels/matmul.js';
import { Graph } from './ir.js';
import { alignFloats } from './layout.js';
import { addLmHead, vocabParts } from './lm-head.js';

/** What the graph builder needs from a trial: the model, the batch and the optimiser settings. */
export interface Gpt2Spec {
  name: string;
  layers: number;
  width: number;
  heads: number;
  ffn: number;
  vocab: number;
  context: number;
  dropout: number;
  batch: number;
  /** Micro-batches per optimiser step; the loss gradient is scaled by 1/accumulate. */
  accumulate: number;
  /** AdamW settings baked into the update kernels. */
  betas: [number, number];
  eps: number;
  wd: number;
  /** Global gradient-norm clip; 0 = off. */
  clip: number;
  /**
   * Default adamw; sgd: plain SGD with decoupled weight decay (betas and eps unused); ngd:
   * normalised gradient descent per expert (the patch model only, see addNgd in lower/compile.ts).
   */
  optimizer?: 'adamw' | 'sgd' | 'ngd';
  /**
   * f16: every matmul reads its operands as f16 (weights from an f16 copy refreshed after each
   * update, activations and gradients rounded at load) and accumulates in f32; everything else,
   * the master weights and the optimiser stay f32. Default f32.
   */
  precision?: 'f32' | 'f16';
  /** Rows per chunk of the LM head (a multiple of 64); default: chosen from the logits' size (graph/lm-head.ts). */
  headChunkRows?: number;
  /**
   * The router parameters' own update (train.router-lr, router-wd): their rate is lr × lrScale on the
   * 'adam.router' uniform, their weight decay `wd` (null: the model's). Absent: they update as the rest.
   */
  router?: { lrScale: number; wd: number | null };
  /**
   * The largest storage binding the plan may use (the adapter's maxStorageBufferBindingSize): wte
   * (and so the tied head) is cut into row parts under it when larger. Default WebGPU's 128 MiB.
   */
  maxBindingBytes?: number;
  /** Forces wte's rows per part (tests); default from maxBindingBytes (graph/lm-head.ts vocabParts). */
  vocabPartRows?: number;
}


/** The f16 copy of a weight (region params16; offsets set by layoutShadows). */
export function shadowOf(g: Graph, W: string): string {
  return g.tensor(`${W}.f16`, g.get(W).shape, 'shadow', { dtype: 'f16', region: 'params16' });
}

/** Per-block hooks: an MoE layer replaces `mlp` in its blocks (issue 5); dense GPT-2 uses the default. */
export interface BlockBuilder {
  /** Forward: reads `x` (N×C, LayerNorm output) and writes the block's FFN output into `out` (N×C). */
  forward(g: Graph, l: number, x: string, out: string): void;
  /** Backward: reads `dout` (N×C) and writes dL/dx into `dx` (N×C, overwritten); accumulates parameter grads. */
  backward(g: Graph, l: number, x: string, dout: string, dx: string): void;
  /** MoE blocks: the layers that write statistics, as the runtime reads them (graph/moe-outputs.ts). */
  routing?: import('./moe-outputs.js').MoeRoutingRecord[];
}

const std = 0.02;

/** Declares a parameter and, if trainable, its gradient view. */
export function param(g: Graph, name: string, shape: number[], init: 'normal' | 'uniform' | 'zeros' | 'ones', opts: { std?: number; bound?: number; decay?: boolean; trainable?: boolean } = {}): string {
  const trainable = opts.trainable ?? true;
  g.tensor(name, shape, 'param', {
    init: init === 'normal' ? { kind: 'normal', std: opts.std ?? std } : init === 'uniform' ? { kind: 'uniform', bound: opts.bound ?? std } : { kind: init },
    decay: opts.decay ?? shape.length >= 2,
    trainable,
  });
  if (trainable) g.tensor(`grad.${name}`, shape, 'grad', { region: 'grads' });
  return name;
}

/** A LayerNorm's weight and bias, with one packed gradient view over both (see layerNormParamGradKernel). */
function layerNormParams(g: Graph, prefix: string, C: number): { w: string; b: string; dwb: string } {
  const w = param(g, `${prefix}.weight`, [C], 'ones', { decay: false });
  const b = param(g, `${prefix}.bias`, [C], 'zeros', { decay: false });
  const dwb = g.tensor(`grad.${prefix}.wb`, [alignFloats(C) + C], 'grad', { region: 'grads' });
  return { w, b, dwb };
}

/**
 * A linear layer y = x·W + b in HF GPT-2's Conv1D layout (W is in×out), forward and backward.
 * With `f16`, the matmuls read W from its f16 copy and round x, dy to f16 (see Gpt2Spec.precision).
 */
export function linear(g: Graph, name: string, rows: number, inF: number, outF: number, std_ = std, f16 = false) {
  const W = param(g, `${name}.weight`, [inF, outF], 'normal', { std: std_ });
  const b = param(g, `${name}.bias`, [outF], 'zeros', { decay: false });
  const Wm = f16 ? shadowOf(g, W) : W;
  const mm = (s: MatmulShape, weight: boolean): MatmulShape => (f16 ? { ...s, f16: { a: 'round', b: weight ? 'stored' : 'round' } } : s);
  return {
    W,
    b,
    /** y = act(x·W + b); with `pre`, x·W + b is written there too (for the activation's backward). */
    forward(x: string, y: string, activation: 'none' | 'gelu' = 'none', pre?: string) {
      g.op('forward', name, matmul, [mm({ m: rows, n: outF, k: inF, bias: true, activation, ...(pre ? { savePre: true } : {}) }, true)], { A: x, B: Wm, C: y, bias: b, ...(pre ? { pre } : {}) });
    },
    /**
     * dx = dy·Wᵀ (overwritten; skipped when dx is null), times act'(h) with `actGrad` (the backward of
     * the activation whose output this layer read, fused), dW += xᵀ·dy, db += Σ dy.
     */
    backward(x: string, dy: string, dx: string | null, actGrad?: { act: 'gelu'; h: string }) {
      if (dx) g.op('backward', `${name}.dx`, matmul, [mm({ m: rows, n: inF, k: outF, transB: true, ...(actGrad ? { actGrad: actGrad.act } : {}) }, true)], { A: dy, B: Wm, C: dx, ...(actGrad ? { H: actGrad.h } : {}) });
      g.op('backward', `${name}.dW`, matmul, [mm({ m: inF, n: outF, k: rows, transA: true, accumulate: true }, false)], { A: x, B: dy, C: `grad.${W}` });
      g.op('backward', `${name}.db`, biasGrad, [rows, outF], { dy: dy, db: `grad.${b}` });
    },
  };
}

/** The dense GPT-2 MLP: c_fc (C→F) with GELU, c_proj (F→C) with the residual projection's scaled init. */
export function denseMlp(s: Gpt2Spec): BlockBuilder {
  const N = s.batch * s.context;
  const C = s.width;
  const F = s.ffn;
  const projStd = std / Math.sqrt(2 * s.layers);
  const layer = (g: Graph, l: number) => ({
    fc: linear(g, `h.${l}.mlp.c_fc`, N, C, F, std, s.precision === 'f16'),
    proj: linear(g, `h.${l}.mlp.c_proj`, N, F, C, projStd, s.precision === 'f16'),
    h: g.tensor(`h${l}.mlp.h`, [N, F], 'activation'),
    a: g.tensor(`h${l}.mlp.gelu`, [N, F], 'activation'),
  });
  return {
    // GELU is fused into the matmuls: c_fc writes h and gelu(h), c_proj's dx multiplies by gelu'(h).
    forward(g, l, x, out) {
      const L = layer(g, l);
      L.fc.forward(x, L.a, 'gelu', L.h);
      L.proj.forward(L.a, out);
    },
    backward(g, l, x, dout, dx) {
      const L = layer(g, l);
      const dh = g.tensor(`h${l}.mlp.dh`, [N, F], 'activation');
      L.proj.backward(L.a, dout, dh, { act: 'gelu', h: L.h });
      L.fc.backward(x, dh, dx);
    },
  };
}

/**
 * Builds the training graph of a GPT-2-style model: token + position embedding, pre-LayerNorm
 * blocks of causal attention and an FFN (dense or MoE via `ffn`), final LayerNorm, tied output
 * head, softmax cross-entropy; the hand-derived backward of each op; gradient-norm clipping and
 * AdamW. Residual adds are fused into the next LayerNorm (llm.c's layout).
 */
export function buildGpt2Graph(s: Gpt2Spec, ffn: BlockBuilder = denseMlp(s)): Graph {
  const g = new Graph(s.name);
  const { batch: B, context: T, width: C, vocab: V, heads: H, layers: Lc } = s;
  const N = B * T;
  if (C % H !== 0) throw new Error(`width ${C} is not divisible by heads ${H}`);
  const hd = C / H;
  const drop = s.dropout > 0;
  const NC = [N, C];
  const f16 = s.precision === 'f16';
  const head = (o: MatmulShape, weight: boolean): MatmulShape => (f16 ? { ...o, f16: { a: 'round', b: weight ? 'stored' : 'round' } } : o);

  // Inputs, uniforms and host-visible outputs.
  g.tensor('tokens', [N], 'input', { dtype: 'u32' });
  g.tensor('targets', [N], 'input', { dtype: 'u32' });
  g.tensor('zeros', NC, 'input');
  g.tensor('adam', [4], 'uniform');
  g.tensor('rng', [4], 'uniform', { dtype: 'u32' });
  g.tensor('loss', [2], 'output');
  g.tensor('train_loss', [1], 'output');
  g.tensor('eval_sum', [2], 'output');
  g.tensor('grad_norm', [2], 'output');
  // train_loss's parts, logged apart: the language-model loss, and the weighted balance and z losses.
  g.tensor('train_lm', [1], 'output');
  g.tensor('train_balance', [1], 'output');
  g.tensor('train_z', [1], 'output');

  const wte = param(g, 'wte.weight', [V, C], 'normal');
  const wpe = param(g, 'wpe.weight', [T, C], 'normal', { std: 0.01 });
  const dropout = (x: string, salt: number, count: number) => {
    if (drop) g.op('forward', `${x}.dropout`, dropoutForward, [count, s.dropout, salt], { x: x, rng: 'rng' });
  };
  const dropoutBack = (dy: string, out: string, salt: number, count: number): string => {
    if (!drop) return dy;
    g.op('backward', `${out}.dropout`, dropoutBackward, [count, s.dropout, salt], { dout: dy, dx: out, rng: 'rng' });
    return out;
  };

  // Forward.
  const x0 = g.tensor('x0', NC, 'activation');
  const parts = vocabParts(V, C, s.maxBindingBytes, s.vocabPartRows);
  if (parts.length === 1) g.op('forward', 'embedding', embeddingForward, [{ B, T, C, V }], { tokens: 'tokens', wte: wte, wpe: wpe, out: x0 });
  else parts.forEach((p, k) => g.op('forward', `embedding.v${k}`, embeddingForward, [{ B, T, C, V, part: p }], { tokens: 'tokens', wte: g.rowsOf(wte, p.v0, p.rows, C), wpe: wpe, out: x0 }));
  dropout(x0, 1, N * C);
  const blocks = [];
  let resid = x0;
  let branch = 'zeros';
  for (let l = 0; l < Lc; l++) {
    const ln1 = layerNormParams(g, `h.${l}.ln_1`, C);
    const ln2 = layerNormParams(g, `h.${l}.ln_2`, C);
    const t = {
      ln1, ln2,
      s1: g.tensor(`h${l}.resid1`, NC, 'activation'),
      a: g.tensor(`h${l}.ln_1`, NC, 'activation'),
      st1: g.tensor(`h${l}.ln_1.stats`, [2 * N], 'activation'),
      qkv: g.tensor(`h${l}.qkv`, [N, 3 * C], 'activation'),
      att: g.tensor(`h${l}.attn`, NC, 'activation'),
      lse: g.tensor(`h${l}.attn.lse`, [B * H * T], 'activation'),
      p: g.tensor(`h${l}.attn.proj`, NC, 'activation'),
      s2: g.tensor(`h${l}.resid2`, NC, 'activation'),
      n: g.tensor(`h${l}.ln_2`, NC, 'activation'),
      st2: g.tensor(`h${l}.ln_2.stats`, [2 * N], 'activation'),
      m: g.tensor(`h${l}.mlp`, NC, 'activation'),
      cAttn: linear(g, `h.${l}.attn.c_attn`, N, C, 3 * C, std, f16),
      cProj: linear(g, `h.${l}.attn.c_proj`, N, C, C, std / Math.sqrt(2 * Lc), f16),
    };
    blocks.push(t);
    g.op('forward', `h${l}.ln_1`, layerNormForward, [{ rows: N, C }], { x: resid, r: branch, w: ln1.w, b: ln1.b, sum: t.s1, out: t.a, stats: t.st1 });
    t.cAttn.forward(t.a, t.qkv);
    g.op('forward', `h${l}.attn`, attentionForward, [{ B, T, heads: H, headDim: hd }], { qkv: t.qkv, out: t.att, lse: t.lse });
    t.cProj.forward(t.att, t.p);
    dropout(t.p, 100 + 2 * l, N * C);
    g.op('forward', `h${l}.ln_2`, layerNormForward, [{ rows: N, C }], { x: t.s1, r: t.p, w: ln2.w, b: ln2.b, sum: t.s2, out: t.n, stats: t.st2 });
    ffn.forward(g, l, t.n, t.m);
    dropout(t.m, 101 + 2 * l, N * C);
    resid = t.s2;
    branch = t.m;
  }
  const lnf = layerNormParams(g, 'ln_f', C);
  const sf = g.tensor('resid_f', NC, 'activation');
  const nf = g.tensor('ln_f', NC, 'activation');
  const stf = g.tensor('ln_f.stats', [2 * N], 'activation');
  g.op('forward', 'ln_f', layerNormForward, [{ rows: N, C }], { x: resid, r: branch, w: lnf.w, b: lnf.b, sum: sf, out: nf, stats: stf });
  // f16 with the vocabulary in parts: an f16 copy per part (each lies in its part's parameter
  // region, so the cast that refreshes it stays within one region); no copy of the whole wte.
  const partShadows = f16 && parts.length > 1 ? parts.map((p) => shadowOf(g, g.rowsOf(wte, p.v0, p.rows, C))) : undefined;
  const wteM = f16 && !partShadows ? shadowOf(g, wte) : wte;
  // d.ln_f is declared after the head's tensors, as before chunking (buffer order in the plan).
  const lmHead = addLmHead(g, { N, C, V, gradScale: 1 / s.accumulate, ...(s.headChunkRows ? { chunkRows: s.headChunkRows } : {}), mm: head, ...(parts.length > 1 ? { parts } : {}) },
    { x: nf, W: wteM, dW: `grad.${wte}`, dx: 'd.ln_f', targets: 'targets', loss: 'loss', ...(partShadows ? { partW: partShadows } : {}) });
  g.op('eval', 'eval.sum', evalSum, [1 / s.accumulate], { loss: 'loss', acc: 'eval_sum' });

  // Backward: `dresid` carries dL/d(residual stream) down the network; LayerNorm backward adds into it.
  const dresid = g.tensor('dresid', NC, 'activation');
  g.op('backward', 'dresid.zero', fill, [N * C], { x: dresid });
  const dnf = g.tensor('d.ln_f', NC, 'activation');
  lmHead.backward();
  g.op('backward', 'ln_f.dx', layerNormBackward, [{ rows: N, C }], { dout: dnf, sum: sf, stats: stf, w: lnf.w, dres: dresid });
  g.op('backward', 'ln_f.dwb', layerNormParamGrad, [{ rows: N, C }, 64, alignFloats(C)], { dout: dnf, sum: sf, stats: stf, dwb: lnf.dwb });
  for (let l = Lc - 1; l >= 0; l--) {
    const t = blocks[l]!;
    const dm = dropoutBack(dresid, g.tensor(`d.h${l}.mlp`, NC, 'activation'), 101 + 2 * l, N * C);
    const dn = g.tensor(`d.h${l}.ln_2`, NC, 'activation');
    ffn.backward(g, l, t.n, dm, dn);
    g.op('backward', `h${l}.ln_2.dx`, layerNormBackward, [{ rows: N, C }], { dout: dn, sum: t.s2, stats: t.st2, w: t.ln2.w, dres: dresid });
    g.op('backward', `h${l}.ln_2.dwb`, layerNormParamGrad, [{ rows: N, C }, 64, alignFloats(C)], { dout: dn, sum: t.s2, stats: t.st2, dwb: t.ln2.dwb });
    const dp = dropoutBack(dresid, g.tensor(`d.h${l}.attn.proj`, NC, 'activation'), 100 + 2 * l, N * C);
    const datt = g.tensor(`d.h${l}.attn`, NC, 'activation');
    t.cProj.backward(t.att, dp, datt);
    const dqkv = g.tensor(`d.h${l}.qkv`, [N, 3 * C], 'activation');
    const delta = g.tensor(`d.h${l}.attn.delta`, [B * H * T], 'activation');
    g.op('backward', `h${l}.attn.dq`, attentionBackwardDq, [{ B, T, heads: H, headDim: hd }], { qkv: t.qkv, out: t.att, dout: datt, lse: t.lse, dqkv: dqkv, delta: delta });
    g.op('backward', `h${l}.attn.dkv`, attentionBackwardDkv, [{ B, T, heads: H, headDim: hd }], { qkv: t.qkv, dout: datt, lse: t.lse, delta: delta, dqkv: dqkv });
    const da = g.tensor(`d.h${l}.ln_1`, NC, 'activation');
    t.cAttn.backward(t.a, dqkv, da);
    g.op('backward', `h${l}.ln_1.dx`, layerNormBackward, [{ rows: N, C }], { dout: da, sum: t.s1, stats: t.st1, w: t.ln1.w, dres: dresid });
    g.op('backward', `h${l}.ln_1.dwb`, layerNormParamGrad, [{ rows: N, C }, 64, alignFloats(C)], { dout: da, sum: t.s1, stats: t.st1, dwb: t.ln1.dwb });
  }
  const dx0 = dropoutBack(dresid, g.tensor('d.x0', NC, 'activation'), 1, N * C);
  if (parts.length === 1) g.op('backward', 'embedding.dwte', embeddingWteGrad, [{ B, T, C, V }], { tokens: 'tokens', dout: dx0, dwte: `grad.${wte}` });
  else parts.forEach((p, k) => g.op('backward', `embedding.dwte.v${k}`, embeddingWteGrad, [{ B, T, C, V, part: p }], { tokens: 'tokens', dout: dx0, dwte: g.rowsOf(`grad.${wte}`, p.v0, p.rows, C) }));
  g.op('backward', 'embedding.dwpe', embeddingWpeGrad, [{ B, T, C, V }], { dout: dx0, dwpe: `grad.${wpe}` });
  g.op('backward', 'loss.accumulate', scaleAdd, [1, 1 / s.accumulate], { x: 'loss', acc: 'train_loss' });
  g.op('backward', 'loss.lm', scaleAdd, [1, 1 / s.accumulate], { x: 'loss', acc: 'train_lm' });
  return g;
}
