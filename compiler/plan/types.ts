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

export interface Plan {
  version: 1;
  name: string;
  buffers: PlanBuffer[];
  kernels: PlanKernel[];
  /** Named programs such as init, train_step, eval_step: ordered dispatch lists. */
  programs: Record<string, PlanDispatch[]>;
}
