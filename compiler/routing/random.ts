// The random router: each token's K distinct experts drawn uniformly from a hash of (seed, step,
// layer salt, assignment), the dropout kernels' counter-based hash, so a run is reproducible from
// its seed and each step draws afresh. Gates 1/K. No parameters, no logits, no auxiliary loss.
import { dropoutHash, dropoutKey, mix32 } from '../reference/dropout.js';
import type { MoeRouterShape } from '../reference/moe.js';
import { assignmentOf, assignmentWgsl } from './slots.js';
import type { RuleRouter } from './router.js';
import { u, f } from '../kernels/wgsl.js';


/**
 * WGSL drawing token n's K distinct experts: the k-th is the (h mod (E − k))-th expert not yet
 * taken, h = mix32(mix32(index ^ key) + key) for the WGSL expressions `key` and `index` (of k).
 * Gates 1/K. Shared by the rules that draw from a hash (random, hash).
 */
export function distinctDrawsWgsl(s: MoeRouterShape, key: string, index: string): string {
  const { experts: E, top: K } = s;
  return `
  let key = ${key};
  var taken: array<u32, ${E}>;
  for (var e = 0u; e < ${u(E)}; e++) { taken[e] = 0u; }
  for (var k = 0u; k < ${u(K)}; k++) {
    let a = ${assignmentWgsl({ top: K }, 'n', 'k')};
    var r = mix32(mix32(${index} ^ key) + key) % (${u(E)} - k);
    var pick = 0u;
    for (var e = 0u; e < ${u(E)}; e++) {
      if (taken[e] == 0u) {
        if (r == 0u) { pick = e; break; }
        r -= 1u;
      }
    }
    taken[pick] = 1u;
    sel[a] = pick;
    gate[a] = ${f(1 / K)};
  }`;
}

/** The reference of distinctDrawsWgsl: token n's K distinct experts for hashed indices index(k). */
export function distinctDraws(E: number, K: number, key: number, index: (k: number) => number): number[] {
  const taken: number[] = [];
  for (let k = 0; k < K; k++) {
    let r = dropoutHash(key, index(k) >>> 0) % (E - k);
    for (let e = 0; e < E; e++) {
      if (taken.includes(e)) continue;
      if (r === 0) {
        taken.push(e);
        break;
      }
      r--;
    }
  }
  return taken;
}

/** Fills sel and gate (N·K) from each token's draws. */
export function fillDraws(s: MoeRouterShape, draws: (n: number) => number[]): { sel: Uint32Array; gate: Float32Array } {
  const { tokens: N, top: K } = s;
  const sel = new Uint32Array(N * K);
  const gate = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    draws(n).forEach((e, k) => {
      sel[assignmentOf({ top: K }, n, k)] = e;
      gate[assignmentOf({ top: K }, n, k)] = 1 / K;
    });
  }
  return { sel, gate };
}

export const randomRouter: RuleRouter = {
  kind: 'random',
  scores: false,
  input: 'rng',
  params: () => 0,
  rule: {
    decl: 'var<uniform> rng: Rng;',
    usesRng: true,
    body: (s) => distinctDrawsWgsl(s, `mix32(mix32(rng.seed ^ ${u(mix32(s.salt >>> 0))}) ^ rng.step)`, 'a'),
  },
  reference(s, inputs) {
    const key = dropoutKey(inputs.seed ?? 0, inputs.step ?? 0, s.salt);
    return fillDraws(s, (n) => distinctDraws(s.experts, s.top, key, (k) => assignmentOf({ top: s.top }, n, k)));
  },
};
