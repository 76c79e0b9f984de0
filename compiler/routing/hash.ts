// Hash routing (Roller et al. 2021, "Hash Layers For Large Sparse Models"): each token id goes to a
// fixed expert, chosen by a fixed hash before training and never learned. This is the paper's
// random hash: expert = h(id) mod E with h = mix32(mix32(id ^ key) + key), the dropout kernels'
// hash, and key fixed by the routing layer's index alone (not the seed: every trial of a sweep gets
// the same map, and each MoE layer its own). With top K > 1 a token takes K distinct experts, the
// k-th drawn from h(id·K + k) among those not yet taken (the random router's draw, keyed by the
// token id instead of the step), each with gate 1/K; top 1 gives gate 1, the paper's layer. The
// paper's balanced hash needs token frequencies of the training data, which the compiler never
// reads; it is not offered. No router parameters, no logits: no noise, no z-loss, no sampled
// second expert (refused), and the balance loss has nothing to act on (ignored, as for random).
import { dropoutKey } from '../reference/dropout.js';
import { mix32Wgsl } from '../kernels/dropout.js';
import { distinctDraws, distinctDrawsWgsl, fillDraws } from './random.js';
import type { RuleRouter } from './router.js';
import { moeNo, moeRule } from '../rules/rule.js';
import { unitOf } from './unit.js';
import { u } from '../kernels/wgsl.js';

/** Separates the hash routers' keys from the random routers' streams of the same layer. */
const HASH_SALT = 0x68617368; // 'hash'

/** The fixed key of a routing layer's hash (its salt holds the layer index). */
export const hashKey = (salt: number) => dropoutKey(0, 0, (salt ^ HASH_SALT) >>> 0);

/** What hash routing cannot take (registered in routing/index.ts). */
export const hashRules = [
  moeRule('lower.hash-sequence', 'router', (m) => m.router === 'hash' && unitOf(m).kind !== 'token' && moeNo('unit', 'hash routing maps each token id to its experts; a sequence has no single token id to hash', 'use unit token with router hash, or a learned router for sequence routing')),
] as const;

export const hashRouter: RuleRouter = {
  kind: 'hash',
  scores: false,
  input: 'tokens',
  params: () => 0,
  rule: {
    decl: 'var<storage, read> tokens: array<u32>;',
    usesRng: false,
    helpers: mix32Wgsl,
    body: (s) => distinctDrawsWgsl(s, u(hashKey(s.salt)), `(tokens[n] * ${u(s.top)} + k)`),
  },
  reference(s, inputs) {
    const key = hashKey(s.salt);
    return fillDraws(s, (n) => distinctDraws(s.experts, s.top, key, (k) => inputs.tokens![n]! * s.top + k));
  },
};
