// Linear routers: logits = x·Wr, Wr = h.{l}.mlp.router.weight (C×E, no bias). `learned` trains Wr;
// `frozen` keeps its random init (outside the optimiser), so only dx flows through it.
import { param } from '../graph/gpt2.js';
import { matmul } from '../kernels/matmul.js';
import type { RouterLayer, ScoringRouter } from './router.js';

function linearRouter(kind: 'learned' | 'frozen'): ScoringRouter {
  const trained = kind === 'learned';
  return {
    kind,
    scores: true,
    trained,
    params: (width, moe) => width * moe.experts,
    scorer(L: RouterLayer) {
      const { g, owner: o, rows: R, width: C, experts: E } = L;
      const W = param(g, `h.${o}.mlp.router.weight`, [C, E], 'normal', { trainable: trained });
      return {
        forward(g, l, input, logits) {
          g.op('forward', `h${l}.mlp.router`, matmul, [{ m: R, n: E, k: C }], { A: input, B: W, C: logits });
        },
        backward: (_g, _l, dlogits) => ({ dOut: dlogits, W, width: E }),
      };
    },
  };
}

export const learnedRouter = linearRouter('learned');
export const frozenRouter = linearRouter('frozen');
