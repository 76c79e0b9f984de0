import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
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

/** Bytes the plan allocates in all: every buffer outside a region, and every region once. */
export function planBytes(plan: Plan): number {
  let total = 0;
  for (const b of plan.buffers) if (b.region === undefined) total += b.bytes;
  for (const bytes of regionSizes(plan).values()) total += bytes;
  return total;
}

/** How much memory the device can give a plan, and where that figure comes from (said in the error). */
export interface MemoryBudget { bytes: number; source: string }

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: 1024 * MiB, gb: 1024 * MiB, gib: 1024 * MiB, t: 1024 * 1024 * MiB, tb: 1024 * 1024 * MiB, tib: 1024 * 1024 * MiB };

/** `24GiB`, `512M`, `1e9` -> bytes, or undefined. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}

/** Memory available to new allocations now: /proc/meminfo's MemAvailable, else os.freemem(). */
function availableRam(): { bytes: number; what: string } {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return { bytes: Number(m[1]) * 1024, what: 'MemAvailable in /proc/meminfo' };
  } catch { /* not Linux */ }
  return { bytes: os.freemem(), what: 'free system memory (os.freemem)' };
}

/**
 * WebGPU does not say how much memory an adapter has, so the budget comes from, in order:
 * MOEC_DEVICE_MEMORY (e.g. `24GiB`); for a software adapter (lavapipe keeps GPU buffers in system
 * RAM) the memory available now; for an NVIDIA adapter nvidia-smi's memory.total of the smallest
 * GPU. Otherwise there is none, and only the per-buffer limits are checked.
 */
export function memoryBudget(adapter: { software: boolean; vendor: string; description: string }, env: NodeJS.ProcessEnv = process.env): MemoryBudget | undefined {
  const set = env['MOEC_DEVICE_MEMORY'];
  if (set !== undefined && set !== '') {
    const bytes = parseBytes(set);
    if (bytes === undefined) throw new UserError(`MOEC_DEVICE_MEMORY='${set}' is not an amount of memory`, { where: 'MOEC_DEVICE_MEMORY', hint: 'write a size such as 24GiB, 16G or 8000MiB, or unset it' });
    return { bytes, source: `MOEC_DEVICE_MEMORY=${set}` };
  }
  if (adapter.software) {
    const ram = availableRam();
    return { bytes: ram.bytes, source: `${ram.what}: the software adapter ${adapter.description || adapter.vendor} keeps GPU buffers in system memory` };
  }
  if (/nvidia/i.test(`${adapter.vendor} ${adapter.description}`)) {
    const mib = nvidiaMemoryMiB();
    if (mib !== undefined) return { bytes: mib * MiB, source: 'memory.total from nvidia-smi' };
  }
  return undefined;
}

let nvidiaMiB: number | null | undefined;

/** The smallest GPU's memory.total from nvidia-smi, asked once per process (null: not there). */
function nvidiaMemoryMiB(): number | undefined {
  if (nvidiaMiB === undefined) {
    nvidiaMiB = null;
    try {
      const out = execFileSync('nvidia-smi', ['--query-gpu=memory.total', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
      const mib = out.split('\n').map((l) => Number(l.trim())).filter((x) => Number.isFinite(x) && x > 0);
      if (mib.length) nvidiaMiB = Math.min(...mib);
    } catch { /* no nvidia-smi: no budget */ }
  }
  return nvidiaMiB ?? undefined;
}

/**
 * Everything about a plan that the device's limits and features decide, checked before any GPU
 * allocation so an impossible plan fails fast with the number it needs and the limit.
 */
export function preflight(plan: Plan, limits: GPUSupportedLimits, features: ReadonlySet<string>, source: string, memory?: MemoryBudget): void {
  const problems: string[] = [];
  if (memory) {
    const total = planBytes(plan);
    if (total > memory.bytes) problems.push(`the plan needs ${fmtBytes(total)} of device memory in all, but the device can give ${fmtBytes(memory.bytes)} (${memory.source})`);
  }
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
      hint: 'use a smaller model, batch or context, or a device with higher limits (`moec doctor` lists them; MOEC_DEVICE_MEMORY sets the memory budget where moec cannot find it)',
    });
  }
}

function sameAllocation(a: PlanBuffer, b: PlanBuffer): boolean {
  return a.name === b.name || (a.region !== undefined && a.region === b.region);
}
