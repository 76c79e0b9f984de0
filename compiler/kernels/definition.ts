// Typed kernel definitions: a kernel's named bindings (type, access), the forms that generate it,
// and the WGSL declarations emitted from those bindings, so the shader, the Plan's binding list and
// the graph op that binds buffers can never disagree.
//
// The pattern, for a new kernel (or to port one written in the older positional style):
//
//   // 1. The bindings, in binding order, as a function of the kernel's shape parameters.
//   const poolBindings = () => [read('x'), readWrite('pooled')];
//   // 2. The generator emits the declarations from them and builds the kernel with boundKernel,
//   //    which checks the WGSL holds exactly those declarations.
//   export function poolKernel(name: string, s: PoolShape): RowKernel {
//     const b = poolBindings();
//     const wgsl = `\n${declarations(b)}\n${perElementMain(64, 'i', s.count)}\n  ...\n}\n`;
//     return boundKernel(name, b, wgsl, [64, 1, 1], { flops, bytes, workgroups });
//   }
//   // 3. The definition: its op kind, the bindings and its forms (compiler/lower/target.ts says
//   //    when each form applies). Add it to the table in compiler/lower/kernel-table.ts.
//   export const moePoolForward = defineKernel('moe_pool_fwd', (_s: PoolShape) => poolBindings(), { portable: poolKernel });
//   // 4. The graph binds buffers by name, checked when the op is added (compiler/graph/ir.ts):
//   g.op('forward', name, moePoolForward, [shape], { x: 'h0.ln_2', pooled: 'h0.moe.pooled' });
//
// Porting an older kernel is mechanical: `registerKernel('k', gen, sg)` becomes an entry
// `k: { portable: gen, subgroup: sg }` of the table (or of a routing plug-in's `kernels`), and
// `g.op(phase, name, 'k', args, [a, b])` keeps working positionally until its kernel has a
// definition; with one, `g.op(phase, name, def, args, { x: a, y: b })`.
import type { KernelBinding } from '../plan/types.js';
import type { RowKernel } from './wgsl.js';
import { CLIP_EPS } from '../reference/gradnorm.js';
import { entry, fExp, stepStruct, u } from './wgsl.js';

/** The bindings every optimiser kernel starts with: params (read_write), grads (read), step (uniform Step). */
export const optimiserBindings = (state: readonly string[] = []): Binding[] => [readWrite('params'), read('grads'), ...state.map((s) => readWrite(s)), uniform('step', 'Step')];

/** An optimiser dispatch's first element in the flat parameter buffer, checked. */
export function checkOffset(kernel: string, offset: number): void {
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`${kernel}: offset=${offset} must be a non-negative integer`);
}

/**
 * The head of an element-wise optimiser update over params[offset, offset+count) on a `grid`: the
 * Step struct, the declarations, the entry, the element `i` and its gradient `gradName`, scaled by
 * min(1, maxNorm / (‖g‖ + eps)) from norm[0] = Σ g² when maxNorm > 0 (clipping by the global norm).
 */
export function optimiserUpdateMain(bindings: readonly Binding[], wg: number, idx: string, count: number, offset: number, maxNorm: number, gradName: string): string {
  const clip = maxNorm > 0 ? ` * min(1.0, ${fExp(maxNorm)} / (sqrt(norm[0]) + ${fExp(CLIP_EPS)}))` : '';
  return `${stepStruct}
${declarations(bindings)}
${entry(wg)}
  let j = ${idx};
  if (j >= ${count}u) { return; }
  let i = j + ${offset}u;
  let ${gradName} = grads[i]${clip};`;
}

export type Access = 'read' | 'read_write' | 'uniform';

/** One @group(0) binding: its WGSL name, its WGSL type (array<f32>, array<u32>, a uniform struct), its access. */
export interface Binding {
  readonly name: string;
  readonly type: string;
  readonly access: Access;
}

export const read = (name: string, type = 'array<f32>'): Binding => ({ name, type, access: 'read' });
export const readWrite = (name: string, type = 'array<f32>'): Binding => ({ name, type, access: 'read_write' });
export const uniform = (name: string, struct: string): Binding => ({ name, type: struct, access: 'uniform' });

const varOf = (b: Binding) => (b.access === 'uniform' ? 'var<uniform>' : `var<storage, ${b.access}>`);

/** The WGSL declaration of one binding, without its @group/@binding attributes. */
export const declarationOf = (b: Binding) => `${varOf(b)} ${b.name}: ${b.type};`;

const declared = /^var<(?:storage, (read|read_write)|uniform)> ([A-Za-z_][A-Za-z0-9_]*): (.+);$/;

/**
 * The binding a WGSL declaration such as `var<storage, read> labels: array<u32>;` declares, for
 * inputs that plug-ins still give as text (SelectionRule.decl); it must read back to the same text.
 */
export function bindingOfDeclaration(decl: string): Binding {
  const m = declared.exec(decl);
  const b: Binding | undefined = m ? { name: m[2]!, type: m[3]!, access: m[1] === undefined ? 'uniform' : (m[1] as Access) } : undefined;
  if (!b || declarationOf(b) !== decl) throw new Error(`kernel binding: '${decl}' is not a declaration as declarations() writes it (var<storage, read|read_write> or var<uniform>, one space after each comma)`);
  return b;
}

/** The WGSL declarations of the bindings, binding i on line i. */
export function declarations(bindings: readonly Binding[]): string {
  return bindings.map((b, i) => `@group(0) @binding(${i}) ${declarationOf(b)}`).join('\n');
}

/** The entry of a kernel whose invocation's index, `index`, is `id` (the global x id, or a wrapped grid's); the body and the closing brace follow. */
export function invocationMain(wg: number, index: string, id = 'gid.x'): string {
  return `@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let ${index} = ${id};`;
}

/** The entry of a kernel with one invocation per element: invocations past `count` return at once. */
export function perElementMain(wg: number, index: string, count: number, id = 'gid.x'): string {
  return `${invocationMain(wg, index, id)}
  if (${index} >= ${u(count)}) { return; }`;
}

const planType = (b: Binding): KernelBinding['type'] => (b.access === 'uniform' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage');

/**
 * A kernel whose Plan bindings are the given ones. Its WGSL must hold their declarations as
 * `declarations` emits them: a generator that wrote its own would be caught here, not by the GPU.
 */
export function boundKernel<T extends object>(name: string, bindings: readonly Binding[], wgsl: string, workgroupSize: [number, number, number], rest: T) {
  if (!wgsl.includes(declarations(bindings))) throw new Error(`kernel ${name}: its WGSL does not hold the declarations of its bindings (${bindings.map((b) => b.name).join(', ')}); emit them with declarations()`);
  const planBindings = bindings.map((b, i) => ({ binding: i, name: b.name, type: planType(b) }));
  return { name, wgsl, entryPoint: 'main', workgroupSize, bindings: planBindings, ...rest };
}

/** The forms a kernel may be lowered to; compiler/lower/target.ts states when each applies. */
export type FormName = 'portable' | 'subgroup';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Generator<A extends unknown[] = any[]> = (name: string, ...args: A) => RowKernel;

/** An op kind's generators, by form; `portable` always exists. */
export type KernelForms<A extends unknown[] = any[]> = { readonly portable: Generator<A> } & { readonly [F in Exclude<FormName, 'portable'>]?: Generator<A> };

/** A kernel an op can bind by name: its op kind, its bindings for given arguments, its forms. */
export interface KernelDefinition<A extends unknown[] = any[]> {
  readonly kind: string;
  readonly bindings: (...args: A) => readonly Binding[];
  readonly forms: KernelForms<A>;
}

export function defineKernel<A extends unknown[]>(kind: string, bindings: (...args: A) => readonly Binding[], forms: KernelForms<A>): KernelDefinition<A> {
  return { kind, bindings, forms };
}
