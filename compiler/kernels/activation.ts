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

export function activationExpr(act: Activation, x: string): string {
  return act === 'none' ? x : `${act}(${x})`;
}

export function applyActivation(act: Activation, x: number): number {
  if (act === 'gelu') return 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  if (act === 'relu') return Math.max(x, 0);
  return x;
}
