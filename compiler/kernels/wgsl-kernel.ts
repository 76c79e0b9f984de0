import type { KernelBinding, PlanKernel } from '../plan/types.js';

const declaration = /@group\(0\)\s*@binding\((\d+)\)\s*var<\s*(storage\s*,\s*(read|read_write)|uniform)\s*>\s*([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * The @group(0) bindings a kernel's WGSL declares, in binding order. Derived from the source so the
 * Plan's binding list and the shader can never disagree.
 */
export function bindingsOf(wgsl: string): KernelBinding[] {
  const found = [...wgsl.matchAll(declaration)].map((m) => ({
    binding: Number(m[1]),
    name: m[4]!,
    type: m[2] === 'uniform' ? ('uniform' as const) : m[3] === 'read' ? ('read-only-storage' as const) : ('storage' as const),
  }));
  return found.sort((a, b) => a.binding - b.binding);
}

/** A PlanKernel from generated WGSL whose entry point is `main`; bindings come from the source. */
export function wgslKernel<T extends object>(name: string, wgsl: string, workgroupSize: [number, number, number], rest: T): PlanKernel & T {
  return { name, wgsl, entryPoint: 'main', workgroupSize, bindings: bindingsOf(wgsl), ...rest };
}
