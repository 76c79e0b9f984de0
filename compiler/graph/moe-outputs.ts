// What the host reads of the MoE layers: their outputs' names and, per statistics output, the
// record the compiler keeps of it (CompiledTrial.routing), so the runtime never works the number
// of experts or assignments out of buffer names and byte sizes.

/** Name of layer l's statistics output (layout: STAT in reference/moe.ts, for `experts` experts). */
export const moeStatsName = (l: number) => `h${l}.moe.stats`;
/** Name of layer l's routing decisions: the experts of each token's assignments (routing/slots.ts). */
export const moeSelName = (l: number) => `h${l}.moe.sel`;

/** Routing layer l's auxiliary-loss-free balancing bias (E floats; state kept across steps and in checkpoints). */
export const moeBiasName = (l: number) => `h${l}.moe.route_bias`;
/** Routing layer l's per-expert load of the current step, summed over its micro-batches (compiler/kernels/moe-bias.ts). */
export const moeBiasLoadName = (l: number) => `h${l}.moe.bias_load`;

/** One layer that writes MoE statistics: a routing layer (with global scope, only the first MoE layer). */
export interface MoeRoutingRecord {
  layer: number;
  experts: number;
  /** Assignments per token in its selections output (moeSelName); null when it has none (Soft MoE, the patch model). */
  selPerToken: number | null;
  /** Experts a token gets on average where that is not selPerToken (expert choice: E·c/G; routing/expert-choice.ts). */
  expertsPerToken?: number;
}

/** Layer l's window of routing statistics, accumulated on the GPU over training steps (reference/moe-diagnostics.ts WINDOW). */
export const moeWindowName = (l: number) => `h${l}.moe.window`;
/** Layer l's load summary, written by the `moe_stats` program from its window (SUMMARY_FIELDS, then the counts). */
export const moeSummaryName = (l: number) => `h${l}.moe.summary`;

/**
 * Where the load diagnostics lie (layers × (fields, experts)): run program `program`, then read
 * each layer's `buffer`: its f32 values are `fields` in order, then `experts` token counts from
 * `countsAt`. The runtime reads this record, never byte sizes.
 */
export interface MoeDiagnosticsLayout {
  program: 'moe_stats';
  fields: readonly string[];
  countsAt: number;
  layers: { layer: number; experts: number; buffer: string }[];
}
