// Auxiliary-loss-free balancing (Wang et al. 2024, "Auxiliary-Loss-Free Load Balancing Strategy for
// Mixture-of-Experts"; DeepSeek-V3): a per-expert bias that the router forward adds to the scores
// for the top-k selection only. It is state, not a parameter: no gradient, no weight decay. Each
// step's load is summed on the GPU over its micro-batches (one buffer per routing layer,
// h{l}.moe.bias_load, zeroed with the gradients) and the bias moves after the optimiser step, so no
// value crosses to the host inside a step. References: compiler/reference/moe-bias.ts.
import { STAT } from '../reference/moe.js';
import type { RowKernel } from './layernorm.js';
import { ceilDiv, checkDims } from './reduce.js';
import { boundKernel, declarations, defineKernel, perElementMain, read, readWrite } from './definition.js';
import { f, u } from './wgsl.js';

const loadBindings = () => [read('stats'), readWrite('load')];
const updateBindings = () => [read('load'), readWrite('bias')];

/** load[e] += the routed count of expert e in one micro-batch's statistics. Bindings: stats (read), load (read_write, E). */
export function moeBiasLoadKernel(name: string, experts: number, wg = 64): RowKernel {
  checkDims(name, { experts });
  const b = loadBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'e', experts)}
  load[e] += stats[${u(STAT.counts)} + e];
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: experts, bytes: 12 * experts, workgroups: [ceilDiv(experts, wg), 1, 1] });
}

/**
 * b[e] += γ·sign(mean load − load[e]), as sign(Σ load − E·load[e]) (exact for counts below 2^24).
 * Each invocation sums the E loads itself (E is small), so one dispatch needs no barrier.
 * Bindings: load (read, E), bias (read_write, E).
 */
export function moeBiasUpdateKernel(name: string, experts: number, rate: number, wg = 64): RowKernel {
  checkDims(name, { experts });
  const b = updateBindings();
  const wgsl = `
${declarations(b)}
${perElementMain(wg, 'e', experts)}
  var total = 0.0;
  for (var i = 0u; i < ${u(experts)}; i++) { total += load[i]; }
  bias[e] += ${f(rate)} * sign(total - ${f(experts)} * load[e]);
}
`;
  return boundKernel(name, b, wgsl, [wg, 1, 1], { flops: experts * (experts + 3), bytes: 4 * experts * (experts + 2), workgroups: [ceilDiv(experts, wg), 1, 1] });
}

export const moeBiasLoad = defineKernel('moe_bias_load', (_experts: number) => loadBindings(), { portable: (n, experts) => moeBiasLoadKernel(n, experts) });
export const moeBiasUpdate = defineKernel('moe_bias_update', (_experts: number, _rate: number) => updateBindings(), { portable: (n, experts, rate) => moeBiasUpdateKernel(n, experts, rate) });
