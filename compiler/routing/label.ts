// The label router: token n of a sequence with label i takes experts (i + k) mod E, k < K (label
// value i goes to expert i mod E first), gates 1/K; the label is the data label `router label(L)`
// names (the language, the genre), one per sequence. No parameters, no logits, no auxiliary loss.
import type { Gpt2Spec } from '../graph/gpt2.js';
import type { Graph } from '../graph/ir.js';
import { assignmentWgsl } from './slots.js';
import { fillDraws } from './random.js';
import type { RuleRouter } from './router.js';
import { u, f } from '../kernels/wgsl.js';


export const labelRouter: RuleRouter = {
  kind: 'label',
  scores: false,
  input: 'labels',
  params: () => 0,
  declareInput: (g: Graph, s: Gpt2Spec) => { g.tensor('labels', [s.batch], 'input', { dtype: 'u32' }); },
  rule: {
    decl: 'var<storage, read> labels: array<u32>;',
    usesRng: false,
    body: (s) => {
      const a = assignmentWgsl({ top: s.top }, 'n', 'k');
      return `
  let label = labels[n / ${u(s.seqLen)}];
  for (var k = 0u; k < ${u(s.top)}; k++) {
    sel[${a}] = (label + k) % ${u(s.experts)};
    gate[${a}] = ${f(1 / s.top)};
  }`;
    },
  },
  reference: (s, inputs) => fillDraws(s, (n) => {
    const label = inputs.labels![Math.floor(n / s.seqLen)]!;
    return Array.from({ length: s.top }, (_, k) => (label + k) % s.experts);
  }),
};
