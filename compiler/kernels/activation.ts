// Element-wise activations shared by kernel epilogues and the CPU references, so both use one formula.
// GELU is GPT-2's tanh approximation; its WGSL statements below are the only copy, which the named
// helper functions here and the inlined forms (kernels/elementwise.ts, kernels/moe-grouped.ts) reuse.

export type Activation = 'none' | 'gelu' | 'relu';

const GELU_K = 0.7978845608028654; // sqrt(2 / pi)
const GELU_A = 0.044715;

/**
 * GELU in WGSL over an f32 `x` in scope: `c` is the statement binding the tanh argument (clamped at
 * use, so the cube cannot overflow tanh), `value` the expression of gelu(x). `gradLines` bind `t` and
 * `dc`, after which `grad` is the expression of gelu'(x).
 */
export const geluWgsl = {
  c: `let c = ${GELU_K} * (x + ${GELU_A} * x * x * x);`,
  value: '0.5 * x * (1.0 + tanh(clamp(c, -15.0, 15.0)))',
  gradLines: [`let c = ${GELU_K} * (x + ${GELU_A} * x * x * x);`, 'let t = tanh(clamp(c, -15.0, 15.0));', `let dc = ${GELU_K} * (1.0 + 3.0 * ${GELU_A} * x * x);`],
  grad: '0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dc',
} as const;

/** A WGSL function `name(x: f32) -> f32` of gelu, with optional leading comment lines. */
export function geluFnWgsl(name: string, comment: string[] = []): string {
  return [`fn ${name}(x: f32) -> f32 {`, ...comment.map((c) => `  // ${c}`), `  ${geluWgsl.c}`, `  return ${geluWgsl.value};`, '}'].join('\n');
}

/** A WGSL function `name(x: f32) -> f32` of gelu'. */
export function geluGradFnWgsl(name: string): string {
  return [`fn ${name}(x: f32) -> f32 {`, ...geluWgsl.gradLines.map((l) => `  ${l}`), `  return ${geluWgsl.grad};`, '}'].join('\n');
}

/** WGSL helper functions; include once per shader that applies an activation. */
export const activationWgsl = /* wgsl */ `
${geluFnWgsl('gelu', ["GPT-2's tanh approximation; the cube is bounded so tanh stays finite."])}
fn relu(x: f32) -> f32 { return max(x, 0.0); }
`;

/** WGSL derivatives of the activations, for epilogues that fuse an activation's backward. */
export const activationGradWgsl = /* wgsl */ `
${geluGradFnWgsl('gelu_grad')}
fn relu_grad(x: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }
`;

export function activationExpr(act: Activation, x: string): string {
  return act === 'none' ? x : `${act}(${x})`;
}

export function applyActivation(act: Activation, x: number): number {
  if (act === 'gelu') return gelu(x);
  if (act === 'relu') return Math.max(x, 0);
  return x;
}

/** d act(x) / dx, the reference of activationGradWgsl. */
export function applyActivationGrad(act: Activation, x: number): number {
  if (act === 'gelu') return geluGrad(x);
  if (act === 'relu') return x > 0 ? 1 : 0;
  return 1;
}

/** gelu(x) in double precision, the reference of geluWgsl.value (unclamped: tanh saturates in f64). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(GELU_K * (x + GELU_A * x * x * x)));
}

/** gelu'(x) in double precision, the reference of geluWgsl.grad. */
export function geluGrad(x: number): number {
  const t = Math.tanh(GELU_K * (x + GELU_A * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * GELU_A * x * x);
}
