// The two entropies of a cluster × expert dispatch table (rows: clusters, columns: experts, cells:
// samples). They agree only when the map from clusters to experts is one-to-one; with more experts
// than clusters they differ widely (DESIGN.md, "Metrics").

/** Entropy in nats of a vector of counts (0 for an empty one). */
function entropyOf(counts: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  let h = 0;
  if (n > 0) for (const c of counts) if (c > 0) h -= (c / n) * Math.log(c / n);
  return h;
}

/** Σ over vectors of (n_i/n)·H(vector i): the entropies weighted by each vector's share of the samples. */
function weighted(vectors: number[][]): number {
  let total = 0;
  let acc = 0;
  for (const v of vectors) {
    const n = v.reduce((a, b) => a + b, 0);
    acc += n * entropyOf(v);
    total += n;
  }
  return total > 0 ? acc / total : 0;
}

/**
 * Dispatch entropy as Chen et al. 2022 define it: Σ_m (n_m/n)·H(clusters of the samples expert m
 * receives), natural log. 0 when every expert receives samples of one cluster only (several experts
 * may share a cluster); at most ln(clusters).
 */
export function dispatchEntropy(dispatch: number[][]): number {
  const M = dispatch[0]?.length ?? 0;
  return weighted(Array.from({ length: M }, (_, m) => dispatch.map((row) => row[m] ?? 0)));
}

/**
 * The mirror quantity, Σ_k (n_k/n)·H(experts that cluster k's samples go to), natural log: 0 when
 * each cluster goes to one expert (several clusters may share it); at most ln(experts).
 */
export function clusterExpertEntropy(dispatch: number[][]): number {
  return weighted(dispatch);
}
