// The hidden widths of an MoE layer's routed and shared experts (DeepSeekMoE, Dai et al. 2024):
// each its own key, independent of the dense layers' `ffn`. Resolution (frontend/resolve.ts) turns
// fractions into absolute widths and applies `granularity`; null left here means the dense `ffn`
// (the width every expert had before these keys, so configs that do not set them are unchanged).
import type { MoeConfig } from './types.js';

type Widths = Pick<MoeConfig, 'expertWidth' | 'sharedWidth'>;

/** The hidden width of each routed expert. */
export const routedWidth = (moe: Widths, ffn: number): number => moe.expertWidth ?? ffn;

/** The hidden width of each shared expert. */
export const sharedWidth = (moe: Widths, ffn: number): number => moe.sharedWidth ?? ffn;
