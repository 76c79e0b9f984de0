// What the host reads of the MoE layers: their outputs' names and, per statistics output, the
// record the compiler keeps of it (CompiledTrial.routing), so the runtime never works the number
// of experts or assignments out of buffer names and byte sizes.

/** Name of layer l's statistics output (layout: STAT in reference/moe.ts, for `experts` experts). */
export const moeStatsName = (l: number) => `h${l}.moe.stats`;
/** Name of layer l's routing decisions: the experts of each token's assignments (routing/slots.ts). */
export const moeSelName = (l: number) => `h${l}.moe.sel`;

/** One layer that writes MoE statistics: a routing layer (with global scope, only the first MoE layer). */
export interface MoeRoutingRecord {
  layer: number;
  experts: number;
  /** Assignments per token in its selections output (moeSelName); null when it has none (Soft MoE, the patch model). */
  selPerToken: number | null;
}
