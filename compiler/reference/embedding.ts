// CPU reference for GPT-2's token + position embedding (forward and backward).

/** out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]. */
export function embeddingForwardReference(B: number, T: number, C: number, tokens: Uint32Array, wte: Float32Array, wpe: Float32Array): Float32Array {
  const out = new Float32Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t]!;
      for (let c = 0; c < C; c++) out[(b * T + t) * C + c] = wte[tok * C + c]! + wpe[t * C + c]!;
    }
  }
  return out;
}

/** Accumulates (+=) dout into dwte (by token id) and dwpe (by position). */
export function embeddingBackwardReference(B: number, T: number, C: number, tokens: Uint32Array, dout: Float32Array, dwte: Float32Array, dwpe: Float32Array): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t]!;
      for (let c = 0; c < C; c++) {
        const g = dout[(b * T + t) * C + c]!;
        dwte[tok * C + c]! += g;
        dwpe[t * C + c]! += g;
      }
    }
  }
}
