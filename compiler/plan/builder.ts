import { type Plan, type PlanBuffer, type PlanDispatch, type PlanKernel, PLAN_VERSION } from './types.js';

/** Assembles a Plan step by step; lowering passes and tests use it instead of writing JSON by hand. */
export class PlanBuilder {
  private readonly buffers = new Map<string, PlanBuffer>();
  private readonly kernels = new Map<string, PlanKernel>();
  private readonly programs: Record<string, PlanDispatch[]> = {};

  constructor(private readonly name: string) {}

  buffer(name: string, floats: number, role: PlanBuffer['role'] = 'activation'): string {
    if (!this.buffers.has(name)) this.buffers.set(name, { name, bytes: Math.max(4, 4 * floats), role });
    return name;
  }

  /** Adds a kernel (once per name) and a dispatch of it to `program`. */
  dispatch(program: string, kernel: PlanKernel & { workgroups?: [number, number, number] }, buffers: string[], workgroups = kernel.workgroups, label?: string): void {
    if (!workgroups) throw new Error(`dispatch of '${kernel.name}' needs workgroup counts`);
    if (!this.kernels.has(kernel.name)) {
      const { workgroups: _w, ...k } = kernel;
      this.kernels.set(kernel.name, k);
    }
    (this.programs[program] ??= []).push({ kernel: kernel.name, buffers, workgroups, ...(label ? { label } : {}) });
  }

  build(): Plan {
    return { version: PLAN_VERSION, name: this.name, buffers: [...this.buffers.values()], kernels: [...this.kernels.values()], programs: this.programs };
  }
}
