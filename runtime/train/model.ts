import { adamwUniforms } from '../../compiler/kernels/adamw.js';
import type { CompiledTrial } from '../../compiler/lower/compile.js';
import type { Gpu } from '../gpu/device.js';
import { PlanExecutor } from '../executor/executor.js';
import type { PipelineOptions } from '../executor/pipelines.js';
import { initParams, splitParams } from './init.js';
import { regionName } from '../../compiler/graph/layout.js';
import { UserError } from '../../grammar/user-error.js';

/**
 * A compiled trial on the GPU: its executor and the parameter, gradient and optimiser-state
 * buffers every model kind shares (checkpoints, gradient checks and initialisation go through it).
 */
export class PlanModel {
  protected constructor(readonly compiled: CompiledTrial, readonly ex: PlanExecutor) {}

  get spec() {
    return this.compiled.spec;
  }

  /** Whether the optimiser keeps AdamW moments (SGD has none). */
  get hasMoments(): boolean {
    return this.compiled.plan.buffers.some((b) => b.name === 'adam.m');
  }

  initParams(seed: number): void {
    this.writeParams(initParams(this.compiled.graph, this.compiled.layout, seed));
  }

  /** Writes the parameters, and refreshes their f16 copies when the plan has them (precision f16). */
  writeParams(flat: Float32Array): void {
    this.writeFlat('params', flat);
    if (this.compiled.plan.programs['refresh_shadows']) this.ex.run('refresh_shadows');
  }

  writeOptimizerState(m: Float32Array, v: Float32Array): void {
    this.writeFlat('adam.m', m);
    this.writeFlat('adam.v', v);
  }

  /** Writes a flat vector (the layout's offsets) into the region buffers it is cut into (compiler/graph/layout.ts). */
  private writeFlat(base: 'params' | 'adam.m' | 'adam.v', flat: Float32Array): void {
    const { regions, total } = this.compiled.layout;
    if (flat.length !== total) throw new Error(`write of ${base}: ${flat.length} floats for a layout of ${total}`);
    regions.forEach((r, k) => this.ex.write(regionName(base, k), flat.subarray(r.start, r.start + r.floats)));
  }

  protected writeLr(step: number, lr: number): void {
    this.ex.write('adam', adamwUniforms(step, lr, { beta1: this.spec.betas[0], beta2: this.spec.betas[1] }));
    // A language model's router with its own rate (train.router-lr) follows the schedule in proportion.
    const router = this.spec.router;
    if (router && !this.compiled.patch) this.ex.write('adam.router', adamwUniforms(step, lr * router.lrScale, { beta1: this.spec.betas[0], beta2: this.spec.betas[1] }));
  }

  async trainLoss(): Promise<number> {
    return (await this.ex.read('train_loss'))[0]!;
  }

  async readParams(): Promise<Map<string, Float32Array>> {
    return splitParams(this.compiled.graph, this.compiled.layout, await this.readFlat('params'));
  }

  /** Gradients by parameter name (frozen parameters have none). */
  async readGrads(): Promise<Map<string, Float32Array>> {
    const all = splitParams(this.compiled.graph, this.compiled.layout, await this.readFlat('grads'));
    for (const name of [...all.keys()]) if (this.compiled.graph.get(name).trainable === false) all.delete(name);
    return all;
  }

  /** A flat vector (the layout's offsets), read from the region buffers it is cut into. */
  async readFlat(base: 'params' | 'grads' | 'adam.m' | 'adam.v'): Promise<Float32Array> {
    const { regions, total } = this.compiled.layout;
    if (regions.length === 1) return this.ex.read(base);
    const out = new Float32Array(total);
    for (const [k, r] of regions.entries()) out.set(await this.ex.read(regionName(base, k)), r.start);
    return out;
  }

  destroy(): void {
    this.ex.destroy();
  }
}

/**
 * Token ids past the vocabulary would be clamped by the embedding kernel (and targets past it scored
 * against a wrong row), so they are refused here, on the host, where every batch is uploaded: an
 * O(batch·context) scan of arrays already in memory, no GPU read-back inside a step.
 */
export function checkTokenIds(tokens: Uint32Array, targets: Uint32Array, vocab: number): void {
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i]! >= vocab) throw new UserError(`token id ${tokens[i]} at position ${i} of the batch is outside the model's vocabulary (0..${vocab - 1})`, { hint: "the data was tokenised with another tokenizer than the model's: use the model's tokenizer (see 'moec show TRIAL')" });
    const t = targets[i]!;
    if (t >= vocab && t !== 0xffffffff) throw new UserError(`target id ${t} at position ${i} of the batch is outside the model's vocabulary (0..${vocab - 1})`, { hint: "the data was tokenised with another tokenizer than the model's" });
  }
}

/**
 * One trial's language model on the GPU: its compiled plan, executor and step counters. Each optimiser
 * step is one submit (or zero_grads + micro_step × accumulate + update with accumulation); only
 * the two 16-byte uniform blocks and the batch are written per step, and nothing is read back
 * unless asked.
 */
export class GpuModel extends PlanModel {
  // Which optional inputs the plan has, decided once rather than searched for on every step.
  private readonly hasRng: boolean;
  private readonly hasLabels: boolean;

  private constructor(compiled: CompiledTrial, ex: PlanExecutor) {
    super(compiled, ex);
    const names = new Set(compiled.plan.buffers.map((b) => b.name));
    this.hasRng = names.has('rng');
    this.hasLabels = names.has('labels');
  }

  static async create(gpu: Gpu, compiled: CompiledTrial, source = 'plan', opts: PipelineOptions = {}): Promise<GpuModel> {
    return new GpuModel(compiled, await PlanExecutor.create(gpu, compiled.plan, source, opts));
  }

  /** Dropout masks derive from (seed, step); `train` 0 turns dropout off. */
  private writeRng(seed: number, step: number, train: boolean): void {
    if (this.hasRng) this.ex.write('rng', new Uint32Array([seed >>> 0, step >>> 0, train ? 1 : 0, 0]));
  }

  private writeBatch(tokens: Uint32Array, targets: Uint32Array, labels?: Uint32Array): void {
    const n = this.spec.batch * this.spec.context;
    if (tokens.length !== n || targets.length !== n) throw new Error(`batch has ${tokens.length}/${targets.length} tokens/targets; the plan takes ${n}`);
    checkTokenIds(tokens, targets, this.spec.vocab);
    this.ex.write('tokens', tokens);
    this.ex.write('targets', targets);
    // Label routers (MoE) read one label id per sequence.
    if (this.hasLabels) {
      if (labels?.length !== this.spec.batch) throw new Error(`this plan routes by label: the batch needs ${this.spec.batch} labels, got ${labels?.length ?? 0}`);
      this.ex.write('labels', labels);
    }
  }

  /**
   * One optimiser step (1-based `step` for AdamW's bias correction) over `micro` micro-batches
   * (as many as `accumulate`). The mean training loss lands in 'train_loss' on the GPU.
   */
  trainStep(step: number, lr: number, seed: number, micro: { tokens: Uint32Array; targets: Uint32Array; labels?: Uint32Array }[]): void {
    if (micro.length !== this.spec.accumulate) throw new Error(`step needs ${this.spec.accumulate} micro-batches, got ${micro.length}`);
    this.writeLr(step, lr);
    if (micro.length === 1) {
      this.writeRng(seed, step, true);
      this.writeBatch(micro[0]!.tokens, micro[0]!.targets, micro[0]!.labels);
      this.ex.run('train_step');
      return;
    }
    this.ex.run('zero_grads');
    micro.forEach((mb, i) => {
      this.writeRng(seed, step * micro.length + i, true);
      this.writeBatch(mb.tokens, mb.targets, mb.labels);
      this.ex.run('micro_step');
    });
    this.ex.run('update');
  }

  /** Forward and backward of one batch without an update (gradient checks); grads are zeroed first. */
  gradients(tokens: Uint32Array, targets: Uint32Array, seed = 0, step = 1, labels?: Uint32Array): void {
    this.writeRng(seed, step, seed !== 0);
    this.writeBatch(tokens, targets, labels);
    this.ex.run('zero_grads');
    this.ex.run('micro_step');
  }

  /** The forward pass alone on one batch (no targets): the logits stay in 'logits', each MoE layer's choices in its sel buffer. */
  forward(tokens: Uint32Array, labels?: Uint32Array): void {
    this.writeRng(0, 0, false);
    this.writeBatch(tokens, new Uint32Array(tokens.length).fill(0xffffffff), labels);
    this.ex.run('eval_step');
  }

  /** Token-weighted validation loss over `batches`, one read-back at the end. */
  async evalLoss(batches: Iterable<{ tokens: Uint32Array; targets: Uint32Array; labels?: Uint32Array }>, seed = 0, step = 0): Promise<{ loss: number; tokens: number }> {
    this.ex.write('eval_sum', new Float32Array(2));
    this.writeRng(seed, step, false);
    for (const b of batches) {
      this.writeBatch(b.tokens, b.targets, b.labels);
      this.ex.run('eval_step');
    }
    const [sum, count] = await this.ex.read('eval_sum');
    return { loss: sum! / Math.max(1, count!), tokens: count! };
  }
}
