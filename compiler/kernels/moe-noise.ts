// Noisy top-k: noise on router logits while training (shared with the patch model's router).
import { mix32 as mix32Host } from '../reference/dropout.js';
import { mix32Wgsl } from './dropout.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, readWrite, uniform } from './definition.js';
import { u, f } from './wgsl.js';

const noiseBindings = () => [readWrite('logits'), uniform('rng', 'Rng')];

/**
 * Noisy top-k: while training (rng.train != 0) adds noise to every router logit in place. Gaussian:
 * noise·z, z a standard normal from Box-Muller on two hashed uniforms per logit (the dropout hash of
 * (rng.seed, rng.step, salt, index)); uniform: noise·u, u in [0, 1) from the first of those two
 * hashes (the same hash inputs), so U(0, noise). The gates, statistics and backward then all see
 * the noisy logits, and d(noisy)/d(logits) = 1, so the backward needs nothing else. One invocation
 * per logit, so a routing row shared by many tokens is perturbed once.
 * Bindings: logits (read_write, R×E), rng (uniform).
 */
export function moeRouterNoiseKernel(name: string, count: number, noise: number, salt: number, dist: 'gaussian' | 'uniform' = 'gaussian', wg = 64): RowKernel {
  checkDims(name, { count, wg });
  const b = noiseBindings();
  const wgsl = `
struct Rng { seed: u32, step: u32, train: u32, pad: u32 }
${declarations(b)}
${routerNoiseWgsl(dist, noise)}
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${u(count)} || rng.train == 0u) { return; }
  logits[i] += router_noise(i, ${noiseKeyWgsl(salt)});
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: (dist === 'uniform' ? 12 : 40) * count, bytes: 8 * count, workgroups: [ceilDiv(count, wg), 1, 1] });
}

/** The noise stream's key for one step, from the `rng` uniform block and a salt baked in. */
export const noiseKeyWgsl = (salt: number) => `mix32(mix32(rng.seed ^ ${u(mix32Host(salt >>> 0))}) ^ rng.step)`;

/**
 * WGSL `router_noise(i, key)`: the noise added to logit i (see moeRouterNoiseKernel), with mix32.
 * Shared by every kernel that perturbs router logits, so their draws agree with routerNoiseReference.
 */
export function routerNoiseWgsl(dist: 'gaussian' | 'uniform', noise: number): string {
  const draw = dist === 'uniform'
    ? `// A 24-bit uniform in [0, 1).
  return ${f(noise)} * (f32(h1 >> 8u) / 16777216.0);`
    : `let h2 = mix32(mix32((2u * i + 1u) ^ key) + key);
  // 24-bit uniforms; u1 in (0, 1] keeps the log finite.
  let u1 = (f32(h1 >> 8u) + 1.0) / 16777216.0;
  let u2 = f32(h2 >> 8u) / 16777216.0;
  return ${f(noise)} * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);`;
  return `${mix32Wgsl}
fn router_noise(i: u32, key: u32) -> f32 {
  let h1 = mix32(mix32((2u * i) ^ key) + key);
  ${draw}
}`;
}

export const moeRouterNoise = defineKernel('moe_router_noise', (_count: number, _noise: number, _salt: number, _dist: 'gaussian' | 'uniform') => noiseBindings(), {
  portable: (n, count, noise, salt, dist) => moeRouterNoiseKernel(n, count, noise, salt, dist),
});
