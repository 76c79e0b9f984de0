// A Plan is the compiler's whole output for one trial: plain data (JSON), so `moec compile` can
// print it, tests can inspect it, and the runtime needs nothing else to run it.

export type BindingType = 'storage' | 'read-only-storage' | 'uniform';

export interface PlanBuffer {
  name: string;
  /** Size in bytes; a multiple of 4. */
  bytes: number;
  /** What the buffer holds; decides the GPU usage flags and whether the host may write or read it. */
  role: 'param' | 'grad' | 'optimizer' | 'activation' | 'input' | 'uniform' | 'output';
  /** Memory plan: buffers sharing a region alias the same GPU allocation at their offsets. */
  region?: string;
  offset?: number;
}

export interface KernelBinding {
  binding: number;
  /** The WGSL variable name, for messages. */
  name: string;
  type: BindingType;
}

export interface PlanKernel {
  name: string;
  wgsl: string;
  entryPoint: string;
  workgroupSize: [number, number, number];
  /** All bindings of @group(0), in binding order. */
  bindings: KernelBinding[];
  /** Optional WebGPU features the WGSL needs (e.g. 'shader-f16'). */
  features?: string[];
  /** FLOPs or bytes moved per dispatch, for profiles; filled by the compiler where known. */
  flops?: number;
  bytes?: number;
}

export interface PlanDispatch {
  kernel: string;
  /** One buffer name per kernel binding, in binding order. */
  buffers: string[];
  workgroups: [number, number, number];
  /** Shown in profiles and error messages; defaults to the kernel name. */
  label?: string;
}

/** Bumped when the Plan's JSON changes; 2 added `interface`. Saved plans are never read back (jobs carry the config), so no older version is read. */
export const PLAN_VERSION = 2;

/**
 * One region of the flat parameter vector (compiler/graph/layout.ts): floats [start, start + floats),
 * and the buffer that holds it in each mirror. m and v are absent without moments (SGD, NGD);
 * params16 where the region has no f16 weight copies.
 */
export interface PlanRegion {
  start: number;
  floats: number;
  params: string;
  grads: string;
  m?: string;
  v?: string;
  params16?: string;
}

/** The buffer one MoE layer writes its statistics to, and the layout of its f32 fields. */
export interface PlanStats {
  layer: number;
  experts: number;
  buffer: string;
  /** Index of each scalar field. */
  scalars: { balance: number; z: number; dropped: number; entropy: number } & Record<string, number>;
  /** Start of each per-expert field (routed counts, mean scores): `experts` floats from there. */
  perExpert: { counts: number; score: number } & Record<string, number>;
  /** The layer's routing decisions (u32 expert ids, assignment n·selPerToken + k); absent when it has none (Soft MoE, the patch model). */
  sel?: string;
  selPerToken: number | null;
}

/**
 * What the host reads and writes of a Plan, by what each buffer is: the runtime finds its buffers
 * here, never by their names or sizes. Every buffer that is not an activation is named in exactly
 * one place (compiler/lower/interface.ts checks it at compile time).
 * To add a kind: add its field here, in planInterfaceSchema (compiler/plan/schema.ts) and in
 * interfaceBuffers (same file, the walk that checks names exist), fill it in
 * compiler/lower/interface.ts, and read it in the runtime through PlanModel.io. State the runtime
 * must save in checkpoints and restore as it is goes in `state` (no runtime change needed).
 */
export interface PlanInterface {
  regions: PlanRegion[];
  /**
   * Views the kernels bind (each buffer's region and offset say where it lies): of the parameter,
   * gradient and f16 regions, one per tensor; rows: row ranges of another buffer that is not an
   * activation (e.g. the targets, chunk by chunk), which the host reaches through that buffer.
   */
  views: { params: string[]; grads: string[]; params16: string[]; rows: string[] };
  /** Optimiser uniforms the host writes each step (adamwUniforms: step, lr); the patch model's router has its own. */
  optimizer: { step: string; routerStep?: string };
  /** Buffers the host writes per batch; the patch model's are x, y and cluster. */
  inputs: { tokens?: string; targets?: string; labels?: string; rng?: string; x?: string; y?: string; cluster?: string };
  /** loss: the mean training loss of the last step; eval: the evaluation sums; logits: the last forward's logits (language models). */
  outputs: { loss: string; eval: string; logits?: string };
  stats: PlanStats[];
  /** Further state saved in checkpoints under `name` and restored as it is (f32). */
  state: { name: string; buffer: string }[];
  /** Buffers no host code touches that are not activations (constants, internal sums). */
  internal: string[];
}

export interface Plan {
  version: typeof PLAN_VERSION;
  name: string;
  buffers: PlanBuffer[];
  kernels: PlanKernel[];
  /** Named programs such as init, train_step, eval_step: ordered dispatch lists. */
  programs: Record<string, PlanDispatch[]>;
  /** Set on plans of a compiled trial (compiler/lower/interface.ts); kernel tests' plans have none. */
  interface?: PlanInterface;
}
