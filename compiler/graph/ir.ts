// The tensor graph of one trial: named tensors and an ordered list of fused ops, each one GPU
// kernel over named tensors. Lowering turns ops into Plan dispatches; the memory planner reads the
// op order for liveness. Ops are grouped into phases, and programs are sequences of phases.

import type { KernelDefinition } from '../kernels/definition.js';

export type TensorKind =
  /** Trained weights, one flat region; `offset` is set by the parameter layout. */
  | 'param'
  | 'grad'
  | 'optimizer'
  /** Intermediate values; placed by the memory planner. */
  | 'activation'
  /** Written by the host each step (tokens, targets, labels). */
  | 'input'
  /** Small per-step blocks the host writes (AdamW scalars, dropout seed). */
  | 'uniform'
  /** Results the host reads back (loss, statistics); never aliased. */
  | 'output'
  /** A copy of parameters in another precision (f16 matmul weights), refreshed after each update. */
  | 'shadow';

export type Init =
  | { kind: 'normal'; std: number }
  /** U(−bound, bound). */
  | { kind: 'uniform'; bound: number }
  | { kind: 'zeros' }
  | { kind: 'ones' };

export interface Tensor {
  name: string;
  shape: number[];
  dtype: 'f32' | 'u32' | 'f16';
  kind: TensorKind;
  /** Parameters: how they start, and whether AdamW decays them. */
  init?: Init;
  decay?: boolean;
  /** Whether the optimizer updates it (false for a frozen router). */
  trainable?: boolean;
  /** A view into a flat region (params, grads, optimizer state), in floats. */
  region?: string;
  offset?: number;
  /** Floats the view spans when it is not the product of the shape (packed LayerNorm grads). */
  span?: number;
  /**
   * A window of another tensor (rows of an activation or input), `viewOffset` elements in: bound at
   * that offset of the base's allocation, live whenever the base is (a chunk of a larger tensor).
   */
  viewOf?: string;
  viewOffset?: number;
}

/** An op kind of the kernel table (compiler/lower/kernel-table.ts) and the arguments its forms are called with. */
export interface KernelRef {
  kind: string;
  args: unknown[];
}

export type Phase = 'zero' | 'forward' | 'loss' | 'backward' | 'update' | 'eval' | 'shadow' | 'stats';

export interface Op {
  /** Unique, readable: shown in profiles and errors (e.g. `h1.mlp.c_fc`). */
  name: string;
  phase: Phase;
  kernel: KernelRef;
  /** One tensor per kernel binding, in binding order. */
  bind: string[];
}

/** The tensors of a by-name binding in the kernel's binding order; every binding named once, no other names. */
function boundInOrder(op: string, k: KernelDefinition, args: unknown[], bind: Readonly<Record<string, string>>): string[] {
  const names = k.bindings(...args).map((b) => b.name);
  const given = Object.keys(bind);
  const unknown = given.filter((n) => !names.includes(n));
  const missing = names.filter((n) => !(n in bind));
  if (unknown.length || missing.length) {
    const said = [unknown.length ? `unknown ${unknown.map((n) => `'${n}'`).join(', ')}` : '', missing.length ? `missing ${missing.map((n) => `'${n}'`).join(', ')}` : ''].filter(Boolean).join('; ');
    throw new Error(`graph: op '${op}' binds ${given.length} buffers to kernel '${k.kind}', whose bindings are ${names.join(', ')} (${names.length}): ${said}`);
  }
  return names.map((n) => bind[n]!);
}

export const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Bytes per element of a tensor's dtype. */
export const elementBytes = (dtype: Tensor['dtype']) => (dtype === 'f16' ? 2 : 4);

export class Graph {
  readonly tensors = new Map<string, Tensor>();
  readonly ops: Op[] = [];
  /** What the graph builder decided for the user to know (e.g. a chunked LM head), for the compile summary. */
  readonly notes: string[] = [];

  constructor(readonly name: string) {}

  tensor(name: string, shape: number[], kind: TensorKind, extra: Partial<Tensor> = {}): string {
    const had = this.tensors.get(name);
    if (had) {
      if (had.shape.join() !== shape.join()) throw new Error(`graph: tensor '${name}' redeclared as [${shape}] (was [${had.shape}])`);
      return name;
    }
    this.tensors.set(name, { name, shape, dtype: 'f32', kind, ...extra });
    return name;
  }

  /**
   * Adds an op. With a kernel definition, `bind` maps each of the kernel's binding names (for these
   * arguments) to a tensor, and a missing or unknown name is an error here; with an op kind (the
   * older form, for kernels without a definition yet) `bind` lists the tensors in binding order.
   */
  op<A extends unknown[]>(phase: Phase, name: string, kernel: KernelDefinition<A>, args: A, bind: Readonly<Record<string, string>>): void;
  op(phase: Phase, name: string, kind: string, args: unknown[], bind: string[]): void;
  op(phase: Phase, name: string, kernel: string | KernelDefinition, args: unknown[], bind: string[] | Readonly<Record<string, string>>): void {
    const kind = typeof kernel === 'string' ? kernel : kernel.kind;
    const order = typeof kernel === 'string' ? (bind as string[]) : boundInOrder(name, kernel, args, bind as Readonly<Record<string, string>>);
    for (const t of order) if (!this.tensors.has(t)) throw new Error(`graph: op '${name}' binds unknown tensor '${t}'`);
    this.ops.push({ name, phase, kernel: { kind, args }, bind: order });
  }

  /** A view of `rows` rows of `base` (rows of `rowLength` elements) from row `row0`. */
  rowsOf(base: string, row0: number, rows: number, rowLength: number): string {
    const b = this.get(base);
    if (b.viewOf) throw new Error(`graph: '${base}' is itself a view`);
    if ((row0 + rows) * rowLength > numel(b.shape)) throw new Error(`graph: rows ${row0}..${row0 + rows} are past the end of '${base}'`);
    const shape = rowLength === 1 ? [rows] : [rows, rowLength];
    return this.tensor(`${base}.rows${row0}_${row0 + rows}`, shape, b.kind, { dtype: b.dtype, viewOf: base, viewOffset: row0 * rowLength });
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`graph: no tensor '${name}'`);
    return t;
  }

  /** The ops of the given phases, phase by phase in the order given. */
  opsIn(...phases: Phase[]): Op[] {
    return phases.flatMap((p) => this.ops.filter((o) => o.phase === p));
  }
}
