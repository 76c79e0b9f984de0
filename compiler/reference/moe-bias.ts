// CPU reference of auxiliary-loss-free balancing's bias update (compiler/kernels/moe-bias.ts;
// Wang et al. 2024, DeepSeek-V3): after each optimiser step, b_i ← b_i + γ·sign(mean load − load_i).

/** One step's load: the assignments each expert got, summed over the step's micro-batches' counts. */
export function biasLoadReference(counts: Float32Array[], experts: number): Float32Array {
  const load = new Float32Array(experts);
  for (const c of counts) for (let e = 0; e < experts; e++) load[e] = Math.fround(load[e]! + c[e]!);
  return load;
}

/** The bias after one step with `load`, at rate γ: sign(total − E·load_i) is sign(mean − load_i), without the division's rounding. */
export function biasUpdateReference(bias: Float32Array, load: Float32Array, rate: number): Float32Array {
  const E = bias.length;
  let total = 0;
  for (let e = 0; e < E; e++) total = Math.fround(total + load[e]!);
  const g = Math.fround(rate);
  return bias.map((b, e) => Math.fround(b + g * Math.sign(Math.fround(total - Math.fround(E * load[e]!)))));
}
