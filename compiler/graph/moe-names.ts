// Names of the MoE layers' outputs the host reads (statistics, routing decisions).

/** Name of layer l's statistics output. */
export const moeStatsName = (l: number) => `h${l}.moe.stats`;
/** Name of layer l's routing decisions: K expert ids per routed row (token, or sequence). */
export const moeSelName = (l: number) => `h${l}.moe.sel`;
