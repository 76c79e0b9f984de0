// Element-wise activations shared by kernel epilogues and the CPU references, so both use one formula.

export type Activation = 'none' | 'gelu' | 'relu';

/** WGSL helper functions; include once per shader that applies an activation. */
export const activationWgsl = /* wgsl */ `
fn gelu(x: f32) -> f32 {
  // GPT-2's tanh approximation; the cube is bounded so tanh stays finite.
  let c = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh(clamp(c, -15.0, 15.0)));
}
fn relu(x: f32) -> f32 { return max(x, 0.0); }
`;

/** WGSL derivatives of the activations, for epilogues that fuse an activation's backward. */
export const activationGradWgsl = /* wgsl */ `
fn gelu_grad(x: f32) -> f32 {
  let c = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let t = tanh(clamp(c, -15.0, 15.0));
  let dc = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dc;
}
fn relu_grad(x: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }
`;

export function activationExpr(act: Activation, x: string): string {
  return act === 'none' ? x : `${act}(${x})`;
}

export function applyActivation(act: Activation, x: number): number {
  if (act === 'gelu') return 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  if (act === 'relu') return Math.max(x, 0);
  return x;
}

/** d act(x) / dx, the reference of activationGradWgsl. */
export function applyActivationGrad(act: Activation, x: number): number {
  if (act === 'gelu') {
    const c = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    const t = Math.tanh(c);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
  }
  if (act === 'relu') return x > 0 ? 1 : 0;
  return 1;
}
