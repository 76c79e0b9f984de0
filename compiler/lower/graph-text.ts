import { elementBytes, numel, type Tensor } from '../graph/ir.js';
import type { PlanBuffer, PlanDispatch, PlanKernel } from '../plan/types.js';
import { programPhases, type CompiledTrial } from './compile.js';

const shapeOf = (t: Tensor) => `[${t.shape.join('x')}] ${t.dtype}`;

/** Where the memory plan put a tensor: its region and byte offset, as the Plan's buffers say. */
function placement(t: Tensor, b: PlanBuffer | undefined): string {
  const view = t.viewOf ? ` (view of ${t.viewOf})` : '';
  return b?.region !== undefined ? `${b.region} @${b.offset} B${view}` : `own buffer${view}`;
}

/**
 * The tensor graph of a compiled trial as text (`moec compile --emit graph`): every tensor with
 * its kind, shape and placement, then the ops phase by phase, each with the kernel the lowering
 * chose and its bindings by WGSL name → tensor (shape, access). Read from the graph and the Plan's
 * dispatches, so what is printed is what runs.
 */
export function formatGraph(c: CompiledTrial): string {
  const g = c.graph;
  const kernels = new Map<string, PlanKernel>(c.plan.kernels.map((k) => [k.name, k]));
  // Each op is one dispatch, labelled by the op's name, in one or more programs.
  const dispatchOf = new Map<string, PlanDispatch>();
  const programsOf = new Map<string, string[]>();
  for (const [program, list] of Object.entries(c.plan.programs)) {
    for (const d of list) {
      const label = d.label ?? d.kernel;
      if (!dispatchOf.has(label)) dispatchOf.set(label, d);
      const ps = programsOf.get(label) ?? [];
      if (!ps.includes(program)) ps.push(program);
      programsOf.set(label, ps);
    }
  }
  const buffers = new Map(c.plan.buffers.map((b) => [b.name, b]));
  const L: string[] = [];
  const bound = new Set(g.ops.flatMap((o) => o.bind));
  const tensors = [...g.tensors.values()].filter((t) => bound.has(t.name));
  L.push(`graph ${g.name}: ${tensors.length} tensors, ${g.ops.length} ops, ${c.plan.kernels.length} kernels`);
  L.push('', 'tensors (kind, shape, bytes, region @ byte offset):');
  const w = Math.max(...tensors.map((t) => t.name.length));
  for (const t of tensors) {
    const bytes = elementBytes(t.dtype) * (t.span ?? numel(t.shape));
    L.push(`  ${t.name.padEnd(w)}  ${t.kind.padEnd(10)} ${shapeOf(t).padEnd(18)} ${String(bytes).padStart(10)}  ${placement(t, buffers.get(t.name))}`.trimEnd());
  }
  const phases = [...new Set(g.ops.map((o) => o.phase))];
  L.push('', `programs: ${Object.entries(programPhases).filter(([p]) => c.plan.programs[p]).map(([p, ph]) => `${p} = ${ph.join('+')}`).join(', ')}`);
  for (const phase of phases) {
    L.push('', `phase ${phase}:`);
    for (const op of g.ops.filter((o) => o.phase === phase)) {
      const d = dispatchOf.get(op.name);
      const k = d ? kernels.get(d.kernel) : undefined;
      const head = k ? `${op.kernel.kind} -> ${k.name} (workgroup ${k.workgroupSize.join('x')}, grid ${d!.workgroups.join('x')})` : `${op.kernel.kind} (not dispatched by any program)`;
      L.push(`  ${op.name}: ${head}`);
      op.bind.forEach((name, i) => {
        const b = k?.bindings[i];
        const access = b ? (b.type === 'storage' ? 'read-write' : b.type === 'uniform' ? 'uniform' : 'read') : '?';
        L.push(`    ${(b?.name ?? `#${i}`).padEnd(12)} = ${name} ${shapeOf(g.get(name))} ${access}`);
      });
    }
  }
  return L.join('\n');
}
