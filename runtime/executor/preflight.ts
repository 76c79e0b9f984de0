import type { Plan, PlanBuffer } from '../../compiler/plan/types.js';
import { UserError } from '../../grammar/user-error.js';

export const MiB = 1024 * 1024;
export const fmtBytes = (n: number): string => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);

/** Bytes each region (shared allocation) needs: the furthest end of its members. */
export function regionSizes(plan: Plan): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const b of plan.buffers) {
    if (b.region !== undefined) sizes.set(b.region, Math.max(sizes.get(b.region) ?? 0, b.offset! + b.bytes));
  }
  return sizes;
}

/**
 * Everything about a plan that the device's limits and features decide, checked before any GPU
 * allocation so an impossible plan fails fast with the number it needs and the limit.
 */
export function preflight(plan: Plan, limits: GPUSupportedLimits, features: ReadonlySet<string>, source: string): void {
  const problems: string[] = [];
  const need = (what: string, amount: number, limit: number, name: string) => {
    const show = name.endsWith('Size') ? fmtBytes : String; // the *Size limits are in bytes
    if (amount > limit) problems.push(`${what} needs ${show(amount)} but this device allows at most ${show(limit)} (${name})`);
  };
  const buffers = new Map(plan.buffers.map((b) => [b.name, b]));
  for (const b of plan.buffers) if (b.region === undefined) need(`buffer '${b.name}'`, b.bytes, limits.maxBufferSize, 'maxBufferSize');
  for (const [r, bytes] of regionSizes(plan)) need(`memory region '${r}'`, bytes, limits.maxBufferSize, 'maxBufferSize');

  const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
  for (const k of plan.kernels) {
    const [x, y, z] = k.workgroupSize;
    need(`kernel '${k.name}' workgroup size`, x * y * z, limits.maxComputeInvocationsPerWorkgroup, 'maxComputeInvocationsPerWorkgroup');
    need(`kernel '${k.name}' workgroup x`, x, limits.maxComputeWorkgroupSizeX, 'maxComputeWorkgroupSizeX');
    need(`kernel '${k.name}' workgroup y`, y, limits.maxComputeWorkgroupSizeY, 'maxComputeWorkgroupSizeY');
    need(`kernel '${k.name}' workgroup z`, z, limits.maxComputeWorkgroupSizeZ, 'maxComputeWorkgroupSizeZ');
    const storage = k.bindings.filter((b) => b.type !== 'uniform').length;
    need(`kernel '${k.name}' storage bindings`, storage, limits.maxStorageBuffersPerShaderStage, 'maxStorageBuffersPerShaderStage');
    for (const f of k.features ?? []) {
      if (!features.has(f)) problems.push(`kernel '${k.name}' needs the WebGPU feature '${f}', which this adapter lacks`);
    }
  }
  const checkedBindings = new Set<string>();
  for (const [prog, list] of Object.entries(plan.programs)) {
    list.forEach((d, i) => {
      const k = kernels.get(d.kernel)!;
      const label = `${prog}[${i}] '${d.label ?? d.kernel}'`;
      d.workgroups.forEach((w, axis) => need(`${label} workgroups along ${'xyz'[axis]}`, w, limits.maxComputeWorkgroupsPerDimension, 'maxComputeWorkgroupsPerDimension'));
      const bound: PlanBuffer[] = d.buffers.map((n) => buffers.get(n)!);
      bound.forEach((b, j) => {
        const type = k.bindings[j]!.type;
        const key = `${b.name}/${type}`;
        if (checkedBindings.has(key)) return;
        checkedBindings.add(key);
        if (type === 'uniform') need(`buffer '${b.name}' bound as a uniform`, b.bytes, limits.maxUniformBufferBindingSize, 'maxUniformBufferBindingSize');
        else need(`buffer '${b.name}'`, b.bytes, limits.maxStorageBufferBindingSize, 'maxStorageBufferBindingSize');
      });
      // WebGPU tracks usage per GPUBuffer, not per range: a writable binding may share its
      // allocation (region) with no other binding of the same dispatch.
      for (let a = 0; a < bound.length; a++) {
        for (let c = a + 1; c < bound.length; c++) {
          const writable = k.bindings[a]!.type === 'storage' || k.bindings[c]!.type === 'storage';
          if (writable && sameAllocation(bound[a]!, bound[c]!)) {
            problems.push(`${label}: buffers '${bound[a]!.name}' and '${bound[c]!.name}' share a GPU allocation and one is written`);
          }
        }
      }
    });
  }
  if (problems.length) {
    throw new UserError(`the plan does not fit this device:\n${problems.map((p) => `  ${p}`).join('\n')}`, {
      where: source,
      hint: 'use a smaller model, batch or context, or a device with higher limits (`moec doctor` lists them)',
    });
  }
}

function sameAllocation(a: PlanBuffer, b: PlanBuffer): boolean {
  return a.name === b.name || (a.region !== undefined && a.region === b.region);
}
