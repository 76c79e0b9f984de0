import { adamwClipKernel, adamwKernel, type AdamWConfig } from '../kernels/adamw.js';
import { dropoutBackwardKernel, dropoutForwardKernel } from '../kernels/dropout.js';
import { gradNormKernels } from '../kernels/gradnorm.js';
import { attentionBackwardKernels, attentionForwardKernel, type AttentionShape } from '../kernels/attention.js';
import { attentionBackwardSubgroupKernels, attentionForwardSubgroupKernel } from '../kernels/attention-subgroup.js';
import { crossEntropyBackwardKernel, crossEntropyForwardKernel, crossEntropyMeanKernel, crossEntropyPartBackwardKernel, crossEntropyPartForwardKernel, crossEntropyPartLossKernel, type CrossEntropyPartShape, type CrossEntropyShape } from '../kernels/crossentropy.js';
import { biasGradKernel, evalSumKernel, fillKernel, geluBackwardKernel, geluForwardKernel, scaleAddKernel } from '../kernels/elementwise.js';
import { embeddingBackwardWpeKernel, embeddingBackwardWteRowsKernel, embeddingForwardKernel, type EmbeddingShape } from '../kernels/embedding.js';
import { layerNormBackwardKernel, layerNormForwardKernel, layerNormParamGradKernel, type LayerNormShape, type RowKernel } from '../kernels/layernorm.js';
import { defaultTiling, matmulKernel, subgroupTiling, type MatmulShape, type MatmulTiling } from '../kernels/matmul.js';
import type { KernelRef } from '../graph/ir.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

// Rows up to this length use the one-invocation-per-row form of the row kernels (LayerNorm, cross-
// entropy): no workgroup memory or barriers. On lavapipe it beat the workgroup-reduction form at
// every size measured (5-200x at rows of 64-4096, still ~2x at 16384); longer rows keep the
// workgroup form, which spreads one row over many invocations on a real GPU.
const PER_INVOCATION_MAX_ROW = 4096;
function rowForm<S extends { perRow?: 'invocation' | 'workgroup' }>(s: S, rowLength: number): S {
  return s.perRow ? s : { ...s, perRow: rowLength <= PER_INVOCATION_MAX_ROW ? 'invocation' : 'workgroup' };
}
type Generator = (name: string, ...args: any[]) => RowKernel;

/** What lowering may assume about the adapter a plan is for (nothing, by default: plans are portable). */
export interface LoweringOptions {
  /**
   * Use the subgroup matmul: the adapter has the 'subgroups' feature with subgroups of at least 8
   * invocations (see `subgroupMatmulSuits`). Plans lowered with it need 'subgroups'.
   */
  subgroupMatmul?: boolean;
}

/** The lowering options that are on, by name (empty: a portable plan). */
export function loweringNames(opts: LoweringOptions | undefined): string[] {
  return Object.entries(opts ?? {}).filter(([, v]) => v).map(([k]) => k);
}

/**
 * Matmul tiling. Measured on lavapipe (2 cores, AVX2; runtime/bench/matmul-compare.ts, the table in
 * docs/PERFORMANCE.md): the subgroup tiling (16×4 outputs per invocation, A shared by
 * subgroupBroadcast) ran at 1.5-3.7× the 8×8 tile at every matmul of the quickstart and 'small'
 * models and at 512³ / 1024³ (quickstart: 3.0-7.5 -> 7.8-13.1 GFLOP/s; 512³: 7.8 -> 16.8), forward,
 * dx (transB) and dW (transA) alike, so one tiling serves them all; the training step ran 1.5×
 * (quickstart) and 1.7× (small) faster. Without subgroups the 8×8 tile stays: a workgroup-uniform
 * row layout, wider tiles and k-unrolling gave no consistent gain (llvmpipe's per-lane load loop is
 * the cost, and only sharing loads across lanes cuts it).
 */
export function matmulTiling(_s: MatmulShape, opts: LoweringOptions = {}): MatmulTiling {
  return opts.subgroupMatmul ? subgroupTiling : defaultTiling;
}

/**
 * Whether an adapter suits the subgroup matmul: it has 'subgroups' with subgroups of at least 8, and
 * it is a software adapter (measured faster only on lavapipe; on a GPU a workgroup of 8 invocations
 * would leave most of a 32-wide warp idle).
 */
export function subgroupMatmulSuits(features: ReadonlySet<string>, subgroupMinSize: number | undefined, software: boolean): boolean {
  return software && features.has('subgroups') && (subgroupMinSize ?? 0) >= 8;
}

// Every op kind the graph may use, and the kernel generator that lowers it. Arguments are plain
// JSON, so identical ops (the same shape in every layer) share one kernel and one pipeline.
const generators: Record<string, Generator> = {
  matmul: (n, s: MatmulShape) => matmulKernel(n, s, matmulTiling(s)),
  ln_fwd: (n, s: LayerNormShape) => layerNormForwardKernel(n, rowForm(s, s.C)),
  ln_bwd: (n, s: LayerNormShape) => layerNormBackwardKernel(n, rowForm(s, s.C)),
  ln_dwb: (n, s: LayerNormShape, wg: number, dbOffset: number) => layerNormParamGradKernel(n, s, wg, dbOffset),
  emb_fwd: (n, s: EmbeddingShape) => embeddingForwardKernel(n, s),
  emb_dwte: (n, s: EmbeddingShape) => embeddingBackwardWteRowsKernel(n, s),
  emb_dwpe: (n, s: EmbeddingShape) => embeddingBackwardWpeKernel(n, s),
  ce_fwd: (n, s: CrossEntropyShape) => crossEntropyForwardKernel(n, rowForm(s, s.V)),
  ce_mean: (n, s: CrossEntropyShape, gradScale: number) => crossEntropyMeanKernel(n, rowForm(s, s.N), gradScale),
  ce_bwd: (n, s: CrossEntropyShape) => crossEntropyBackwardKernel(n, rowForm(s, s.V), true),
  ce_part_fwd: (n, s: CrossEntropyPartShape) => crossEntropyPartForwardKernel(n, s),
  ce_part_loss: (n, s: { N: number; V: number }) => crossEntropyPartLossKernel(n, s),
  ce_part_bwd: (n, s: CrossEntropyPartShape) => crossEntropyPartBackwardKernel(n, s),
  attn_fwd: (n, s: AttentionShape) => attentionForwardKernel(n, s),
  attn_bwd_dq: (n, s: AttentionShape) => attentionBackwardKernels(n, s)[0],
  attn_bwd_dkv: (n, s: AttentionShape) => attentionBackwardKernels(n, s)[1],
  gelu_fwd: (n, count: number) => geluForwardKernel(n, count),
  gelu_bwd: (n, count: number) => geluBackwardKernel(n, count),
  bias_grad: (n, rows: number, cols: number) => biasGradKernel(n, rows, cols),
  fill: (n, count: number) => fillKernel(n, count),
  scale_add: (n, count: number, scale: number) => scaleAddKernel(n, count, scale),
  eval_sum: (n, gradScale: number) => evalSumKernel(n, gradScale),
  adamw: (n, offset: number, count: number, cfg: AdamWConfig) => adamwKernel(n, { offset, count }, cfg),
  adamw_clip: (n, offset: number, count: number, cfg: AdamWConfig, maxNorm: number) => adamwClipKernel(n, { offset, count }, cfg, maxNorm),
  gradnorm_partial: (n, count: number) => gradNormKernels(n, { count }).partial,
  gradnorm_total: (n, count: number) => gradNormKernels(n, { count }).total,
  dropout_fwd: (n, count: number, p: number, salt: number) => dropoutForwardKernel(n, { count, p, salt }, true),
  dropout_bwd: (n, count: number, p: number, salt: number) => dropoutBackwardKernel(n, { count, p, salt }, false),
};

// Forms used instead where the lowering may use subgroups (LoweringOptions.subgroupMatmul).
const subgroupGenerators: Record<string, Generator> = {
  matmul: (n, s: MatmulShape) => matmulKernel(n, s, matmulTiling(s, { subgroupMatmul: true })),
  // Key (query) rows shared by subgroupBroadcast: 1.9-5.4× the plain forms at the bench models'
  // shapes, training steps 1.2-1.3× faster (kernels/attention-subgroup.ts, bench/attention-compare.ts).
  attn_fwd: (n, s: AttentionShape) => attentionForwardSubgroupKernel(n, s),
  attn_bwd_dq: (n, s: AttentionShape) => attentionBackwardSubgroupKernels(n, s)[0],
  attn_bwd_dkv: (n, s: AttentionShape) => attentionBackwardSubgroupKernels(n, s)[1],
};

/** Adds an op kind; `subgroupGen`, if given, lowers it where subgroup matmuls are allowed. */
export function registerKernel(kind: string, gen: Generator, subgroupGen?: Generator): void {
  generators[kind] = gen;
  if (subgroupGen) subgroupGenerators[kind] = subgroupGen;
}

/** Lowers op kernels, sharing one generated kernel between ops with the same kind and arguments. */
export class KernelCache {
  private readonly byKey = new Map<string, RowKernel>();
  private readonly perKind = new Map<string, number>();

  constructor(private readonly opts: LoweringOptions = {}) {}

  get(ref: KernelRef): RowKernel {
    const key = `${ref.kind}:${JSON.stringify(ref.args)}`;
    let k = this.byKey.get(key);
    if (!k) {
      const gen: Generator | undefined = (this.opts.subgroupMatmul ? subgroupGenerators[ref.kind] : undefined) ?? generators[ref.kind];
      if (!gen) throw new Error(`lowering: no kernel for op kind '${ref.kind}'`);
      const i = this.perKind.get(ref.kind) ?? 0;
      this.perKind.set(ref.kind, i + 1);
      k = gen(`${ref.kind}_${i}`, ...ref.args);
      this.byKey.set(key, k);
    }
    return k;
  }
}
