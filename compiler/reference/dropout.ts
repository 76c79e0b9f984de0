// CPU reference for inverted dropout with a counter-based mask: the mask is a pure function of
// (seed, step, salt, element index), so forward and backward regenerate it and no mask is stored.
// All hashing is u32 arithmetic (Math.imul, >>> 0), bit for bit the WGSL in kernels/dropout.ts.

/** lowbias32 (Chris Wellons' hash-prospector): a bijective u32 mixer with low avalanche bias. */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The per-dispatch key: one per (seed, step, site). */
export function dropoutKey(seed: number, step: number, salt: number): number {
  return mix32((mix32((seed ^ mix32(salt >>> 0)) >>> 0) ^ step) >>> 0);
}

/** The hash deciding element `index`; it is kept when the hash is at least dropoutThreshold(p). */
export function dropoutHash(key: number, index: number): number {
  return mix32((mix32((index ^ key) >>> 0) + key) >>> 0);
}

/** round(p · 2³²), so a uniform u32 hash falls below it with probability p. */
export function dropoutThreshold(p: number): number {
  return Math.min(0xffffffff, Math.round(p * 2 ** 32));
}

/** The f32 scale 1/(1-p) applied to kept elements. */
export const dropoutScale = (p: number): number => Math.fround(1 / (1 - p));

/** The 16-byte `rng` uniform block: { seed, step, train (1 or 0), 0 }. */
export function dropoutUniforms(seed: number, step: number, train: boolean): Uint32Array {
  return new Uint32Array([seed >>> 0, step >>> 0, train ? 1 : 0, 0]);
}

/**
 * out = x · mask / (1 − p) when training, x otherwise. The same function is the backward pass
 * (dx from dout) with the same seed, step and salt.
 */
export function dropoutReference(x: Float32Array, p: number, salt: number, seed: number, step: number, train: boolean): Float32Array {
  if (!train) return x.slice();
  const key = dropoutKey(seed, step, salt);
  const threshold = dropoutThreshold(p);
  const scale = dropoutScale(p);
  // Float32Array stores round the exact f64 product of two f32 values: the same as an f32 multiply.
  return x.map((v, i) => (dropoutHash(key, i) >= threshold ? v * scale : 0));
}
