// The routing unit: each token routes, or each sequence routes once from the mean of its first
// `prefix` hidden states (the whole sequence when prefix is null). The resolved config keeps the
// flat `unit`/`prefix` fields (trial ids hash it); the compiler reads them through this union.
import type { MoeConfig } from '../frontend/types.js';
import type { PoolShape } from '../kernels/moe-pool.js';

export type RoutingUnit = { kind: 'token' } | { kind: 'sequence'; prefix: number | null };

export const unitOf = (moe: MoeConfig): RoutingUnit => (moe.unit === 'sequence' ? { kind: 'sequence', prefix: moe.prefix } : { kind: 'token' });

/** Tokens that share one routing decision: 1, or the context length T. */
export const tokensPerRow = (unit: RoutingUnit, T: number) => (unit.kind === 'sequence' ? T : 1);

/** The pooling of a sequence unit over N tokens of width C, null for token routing. */
export function poolOf(unit: RoutingUnit, N: number, T: number, C: number): PoolShape | null {
  return unit.kind === 'sequence' ? { tokens: N, seqLen: T, width: C, prefix: Math.min(unit.prefix ?? T, T) } : null;
}
