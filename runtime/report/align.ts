// Expert numbers are arbitrary in each seed: the expert that takes German in seed 1 may be expert 3
// in seed 2. Before counts of several seeds are summed, each seed's experts are matched to the
// reference seed's by what they take (their label profiles), so the sum shows a specialisation every
// seed has instead of blurring it.

/**
 * Minimum-cost assignment of rows to columns of a square cost matrix (Hungarian algorithm with
 * potentials, O(n³)); returns col[i], the column given to row i.
 */
export function hungarian(cost: number[][]): number[] {
  const n = cost.length;
  const INF = Number.POSITIVE_INFINITY;
  const u = new Array<number>(n + 1).fill(0);
  const v = new Array<number>(n + 1).fill(0);
  const rowOf = new Array<number>(n + 1).fill(0); // rowOf[j]: the (1-based) row holding column j
  const way = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    rowOf[0] = i;
    let j0 = 0;
    const minv = new Array<number>(n + 1).fill(INF);
    const used = new Array<boolean>(n + 1).fill(false);
    do {
      used[j0] = true;
      const i0 = rowOf[j0]!;
      let delta = INF;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost[i0 - 1]![j - 1]! - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[rowOf[j]!]! += delta;
          v[j]! -= delta;
        } else {
          minv[j]! -= delta;
        }
      }
      j0 = j1;
    } while (rowOf[j0] !== 0);
    do {
      const j1 = way[j0]!;
      rowOf[j0] = rowOf[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const col = new Array<number>(n).fill(0);
  for (let j = 1; j <= n; j++) if (rowOf[j]! > 0) col[rowOf[j]! - 1] = j - 1;
  return col;
}

/** Each expert's share of all routed tokens, per label value: profile[e][value]. */
function profiles(counts: Record<string, number[]>, experts: number): Map<string, number>[] {
  const total = Object.values(counts).reduce((a, cs) => a + cs.reduce((x, y) => x + y, 0), 0) || 1;
  return Array.from({ length: experts }, (_, e) => new Map(Object.entries(counts).map(([value, cs]) => [value, (cs[e] ?? 0) / total])));
}

/**
 * For one MoE layer: which reference expert each of `other`'s experts corresponds to (result[e] is
 * the reference index of other's expert e), matching experts whose label profiles overlap most
 * (histogram intersection, summed over the matching, maximised).
 */
export function alignExperts(reference: Record<string, number[]>, other: Record<string, number[]>): number[] {
  const experts = Math.max(0, ...[...Object.values(reference), ...Object.values(other)].map((c) => c.length));
  const ref = profiles(reference, experts);
  const oth = profiles(other, experts);
  const cost = oth.map((po) => ref.map((pr) => {
    let overlap = 0;
    for (const [value, x] of po) overlap += Math.min(x, pr.get(value) ?? 0);
    return -overlap;
  }));
  return hungarian(cost);
}
