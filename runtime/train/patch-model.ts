import type { CompiledTrial } from '../../compiler/lower/compile.js';
import type { PatchGraphSpec } from '../../compiler/graph/patches.js';
import type { ClusterBatch, ClusterSplit } from '../data/index.js';
import type { Gpu } from '../gpu/device.js';
import { PlanExecutor } from '../executor/executor.js';
import type { PipelineOptions } from '../executor/pipelines.js';
import { PlanModel } from './model.js';
import { adamwUniforms } from '../../compiler/kernels/adamw.js';

export interface PatchEval {
  loss: number;
  /** Fraction of samples whose sign of F(x) is their label. */
  accuracy: number;
  samples: number;
  /** clusters × experts: samples of each cluster dispatched to each expert. */
  dispatch: number[][];
}

/**
 * The patch model of the cluster task (Chen et al. 2022) on the GPU: one submit per step, the
 * batch (x, y, cluster ids) and two 16-byte uniforms written per step; evaluation accumulates loss,
 * accuracy and the cluster × expert dispatch table on the GPU and reads it back once.
 */
export class PatchModel extends PlanModel {
  private readonly inputs: { x: string; y: string; cluster: string; rng?: string };
  /** The training batch now in x and y: a full batch is uploaded once, not every step. */
  private resident: ClusterBatch | null = null;

  private constructor(compiled: CompiledTrial, ex: PlanExecutor) {
    super(compiled, ex);
    const { x, y, cluster, rng } = this.io.inputs;
    if (!x || !y || !cluster) throw new Error(`plan ${compiled.plan.name} takes no samples (x, y, cluster): not a patch-model plan`);
    this.inputs = { x, y, cluster, rng };
  }

  /** The experts' rate in the optimiser's step uniform; the router's, lr × routerLrScale, in its own. */
  protected override writeLr(step: number, lr: number): void {
    super.writeLr(step, lr);
    const router = this.io.optimizer.routerStep;
    if (router) this.ex.write(router, adamwUniforms(step, lr * this.shape.routerLrScale, { beta1: this.spec.betas[0], beta2: this.spec.betas[1] }));
  }

  static async create(gpu: Gpu, compiled: CompiledTrial, source = 'plan', opts: PipelineOptions = {}): Promise<PatchModel> {
    if (!compiled.patch) throw new Error(`${source}: not a patch-model plan`);
    return new PatchModel(compiled, await PlanExecutor.create(gpu, compiled.plan, source, opts));
  }

  get shape(): PatchGraphSpec {
    return this.compiled.patch!;
  }

  /** The batch's samples and labels; cluster ids only for evaluation (no training kernel reads them). */
  private write(b: ClusterBatch, seed: number, step: number, train: boolean): void {
    const { batch: B, patches: P, dim: D } = this.shape;
    if (b.x.length !== B * P * D || b.y.length !== B) throw new Error(`batch has ${b.y.length} samples of ${b.x.length / Math.max(1, b.y.length)} floats; the plan takes ${B} of ${P * D}`);
    if (!train || this.resident !== b) {
      this.ex.write(this.inputs.x, b.x);
      this.ex.write(this.inputs.y, Float32Array.from(b.y));
    }
    this.resident = train ? b : null;
    if (!train) this.ex.write(this.inputs.cluster, b.cluster);
    if (this.inputs.rng) this.ex.write(this.inputs.rng, new Uint32Array([seed >>> 0, step >>> 0, train ? 1 : 0, 0]));
  }

  /** One optimiser step (1-based); router noise derives from (seed, step). */
  trainStep(step: number, lr: number, seed: number, b: ClusterBatch): void {
    this.writeLr(step, lr);
    this.write(b, seed, step, true);
    this.ex.run('train_step');
  }

  /** Forward and backward without an update (gradient checks); `train` turns the router noise on. */
  gradients(b: ClusterBatch, seed = 0, step = 1, train = false): void {
    this.write(b, seed, step, train);
    this.ex.run('zero_grads');
    this.ex.run('micro_step');
  }

  /** Loss, accuracy and dispatch over a whole split (no noise); the last batch is padded with y = 0. */
  async evaluate(split: ClusterSplit, maxBatches = 0): Promise<PatchEval> {
    const { batch: B, patches: P, dim: D, experts: M, clusters: K } = this.shape;
    const s = P * D;
    this.ex.write(this.io.outputs.eval, new Float32Array(3 + K * M));
    const batches = Math.ceil(split.n / B);
    for (let i = 0; i < batches && (maxBatches === 0 || i < maxBatches); i++) {
      const n = Math.min(B, split.n - i * B);
      const b: ClusterBatch = { x: new Float32Array(B * s), y: new Int8Array(B), cluster: new Uint32Array(B) };
      b.x.set(split.x.subarray(i * B * s, (i * B + n) * s));
      b.y.set(split.y.subarray(i * B, i * B + n));
      b.cluster.set(split.cluster.subarray(i * B, i * B + n));
      this.write(b, 0, 0, false);
      this.ex.run('eval_step');
    }
    const acc = await this.ex.read(this.io.outputs.eval);
    const samples = acc[1]!;
    return {
      loss: acc[0]! / Math.max(1, samples), accuracy: acc[2]! / Math.max(1, samples), samples,
      dispatch: Array.from({ length: K }, (_, k) => Array.from(acc.subarray(3 + k * M, 3 + (k + 1) * M))),
    };
  }
}

export { clusterExpertEntropy, dispatchEntropy } from './dispatch-entropy.js';
