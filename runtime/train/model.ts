import { adamwUniforms } from '../../compiler/kernels/adamw.js';
import type { CompiledTrial } from '../../compiler/lower/compile.js';
import type { Gpu } from '../gpu/device.js';
import { PlanExecutor } from '../executor/executor.js';
import type { PipelineOptions } from '../executor/pipelines.js';
import { initParams, splitParams } from './init.js';
import type { PlanInterface, PlanRegion } from '../../compiler/plan/types.js';
import { UserError } from '../../grammar/user-error.js';

/** The flat vectors of the parameter layout a plan may keep: parameters, gradients, AdamW moments. */
export type FlatVector = keyof Pick<PlanRegion, 'params' | 'grads' | 'm' | 'v'>;

/**
 * A compiled trial on the GPU: its executor and the parameter, gradient and optimiser-state
 * buffers every model kind shares (checkpoints, gradient checks and initialisation go through it).
 */
export class PlanModel {
  /** The plan's interface: which buffer holds what (compiler/lower/interface.ts). */
  readonly io: PlanInterface;

  protected constructor(readonly compiled: CompiledTrial, readonly ex: PlanExecutor) {
    if (!compiled.plan.interface) throw new Error(`plan ${compiled.plan.name} has no interface: only a compiled trial (compileTrial, compileGpt2) can be trained`);
    this.io = compiled.plan.interface;
  }

  get spec() {
    return this.compiled.spec;
  }

  /** Whether the optimiser keeps AdamW moments (SGD has none). */
  get hasMoments(): boolean {
    return this.io.regions[0]!.m !== undefined;
  }

  initParams(seed: number): void {
    this.writeParams(initParams(this.compiled.graph, this.compiled.layout, seed));
  }

  /** Writes the parameters, and refreshes their f16 copies when the plan has them (precision f16). */
  writeParams(flat: Float32Array): void {
    this.writeFlat('params', flat);
    if (this.io.regions.some((r) => r.params16 !== undefined)) this.ex.run('refresh_shadows');
  }

  writeOptimizerState(m: Float32Array, v: Float32Array): void {
    this.writeFlat('m', m);
    this.writeFlat('v', v);
  }

  /** The buffer of each region of a flat vector; refuses a mirror the plan does not keep. */
  private regionBuffers(vector: FlatVector): { buffer: string; start: number; floats: number }[] {
    return this.io.regions.map((r, k) => {
      const buffer = r[vector];
      if (buffer === undefined) throw new Error(`plan ${this.compiled.plan.name} keeps no '${vector}' vector (region ${k})`);
      return { buffer, start: r.start, floats: r.floats };
    });
  }

  /** Writes a flat vector (the layout's offsets) into the region buffers it is cut into (compiler/graph/layout.ts). */
  private writeFlat(vector: 'params' | 'm' | 'v', flat: Float32Array): void {
    const regions = this.regionBuffers(vector);
    const total = regions.reduce((a, r) => a + r.floats, 0);
    if (flat.length !== total) throw new Error(`write of ${vector}: ${flat.length} floats for a layout of ${total}`);
    for (const r of regions) this.ex.write(r.buffer, flat.subarray(r.start, r.start + r.floats));
  }

  protected writeLr(step: number, lr: number): void {
    this.ex.write(this.io.optimizer.step, adamwUniforms(step, lr, { beta1: this.spec.betas[0], beta2: this.spec.betas[1] }));
    // A language model's router with its own rate (train.router-lr) follows the schedule in proportion.
    const router = this.spec.router;
    if (router && !this.compiled.patch && this.io.optimizer.routerStep) this.ex.write(this.io.optimizer.routerStep, adamwUniforms(step, lr * router.lrScale, { beta1: this.spec.betas[0], beta2: this.spec.betas[1] }));
  }

  async trainLoss(): Promise<number> {
    return (await this.ex.read(this.io.outputs.loss))[0]!;
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
  async readFlat(vector: FlatVector): Promise<Float32Array> {
    const regions = this.regionBuffers(vector);
    if (regions.length === 1) return this.ex.read(regions[0]!.buffer);
    const out = new Float32Array(regions.reduce((a, r) => a + r.floats, 0));
    for (const r of regions) out.set(await this.ex.read(r.buffer), r.start);
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
  private readonly inputs: { tokens: string; targets: string; labels?: string; rng?: string };

  private constructor(compiled: CompiledTrial, ex: PlanExecutor) {
    super(compiled, ex);
    const { tokens, targets, labels, rng } = this.io.inputs;
    if (!tokens || !targets) throw new Error(`plan ${compiled.plan.name} takes no tokens and targets: not a language model`);
    this.inputs = { tokens, targets, labels, rng };
  }

  static async create(gpu: Gpu, compiled: CompiledTrial, source = 'plan', opts: PipelineOptions = {}): Promise<GpuModel> {
    return new GpuModel(compiled, await PlanExecutor.create(gpu, compiled.plan, source, opts));
  }

  /** Dropout masks derive from (seed, step); `train` 0 turns dropout off. */
  private writeRng(seed: number, step: number, train: boolean): void {
    if (this.inputs.rng) this.ex.write(this.inputs.rng, new Uint32Array([seed >>> 0, step >>> 0, train ? 1 : 0, 0]));
  }

  private writeBatch(tokens: Uint32Array, targets: Uint32Array, labels?: Uint32Array): void {
    const n = this.spec.batch * this.spec.context;
    if (tokens.length !== n || targets.length !== n) throw new Error(`batch has ${tokens.length}/${targets.length} tokens/targets; the plan takes ${n}`);
    checkTokenIds(tokens, targets, this.spec.vocab);
    this.ex.write(this.inputs.tokens, tokens);
    this.ex.write(this.inputs.targets, targets);
    // Label routers (MoE) read one label id per sequence.
    if (this.inputs.labels) {
      if (labels?.length !== this.spec.batch) throw new Error(`this plan routes by label: the batch needs ${this.spec.batch} labels, got ${labels?.length ?? 0}`);
      this.ex.write(this.inputs.labels, labels);
    }
  }

  /**
   * One optimiser step (1-based `step` for AdamW's bias correction) over `micro` micro-batches
   * (as many as `accumulate`). The mean training loss lands in the plan's loss output on the GPU.
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

  /** The forward pass alone on one batch (no targets): the logits stay in the plan's logits output, each MoE layer's choices in its sel buffer. */
  forward(tokens: Uint32Array, labels?: Uint32Array): void {
    this.writeRng(0, 0, false);
    this.writeBatch(tokens, new Uint32Array(tokens.length).fill(0xffffffff), labels);
    this.ex.run('eval_step');
  }

  /** Token-weighted validation loss over `batches`, one read-back at the end. */
  async evalLoss(batches: Iterable<{ tokens: Uint32Array; targets: Uint32Array; labels?: Uint32Array }>, seed = 0, step = 0): Promise<{ loss: number; tokens: number }> {
    this.ex.write(this.io.outputs.eval, new Float32Array(2));
    this.writeRng(seed, step, false);
    for (const b of batches) {
      this.writeBatch(b.tokens, b.targets, b.labels);
      this.ex.run('eval_step');
    }
    const [sum, count] = await this.ex.read(this.io.outputs.eval);
    return { loss: sum! / Math.max(1, count!), tokens: count! };
  }
}
