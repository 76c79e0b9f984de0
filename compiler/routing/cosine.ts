// The cosine router (X-MoE, Chi et al. 2022): logits[r, e] = cos(x_r·Wp, emb_e) · exp(logScale), a
// C→D projection Wp, expert embeddings emb (D×E) and a learned log inverse temperature (starts at
// 1: scale e). Kernels in kernels/moe-cosine.ts, reference in reference/moe.ts.
import { param } from '../graph/gpt2.js';
import { type CosineShape, moeCosineBackwardEmb, moeCosineBackwardP, moeCosineBackwardScale, moeCosineForward } from '../kernels/moe-cosine.js';
import { matmul } from '../kernels/matmul.js';
import { choiceOf } from './choice.js';
import type { RouterLayer, ScoringRouter } from './router.js';

export const cosineRouter: ScoringRouter = {
  kind: 'cosine',
  scores: true,
  trained: true,
  params: (width, moe) => {
    const { dim: D } = choiceOf(moe, 'cosine');
    return width * D + D * moe.experts + 1;
  },
  definitions: [moeCosineForward, moeCosineBackwardP, moeCosineBackwardEmb, moeCosineBackwardScale],
  scorer(L: RouterLayer) {
    const { g, moe, owner: o, rows: R, width: C, experts: E } = L;
    const { dim: D } = choiceOf(moe, 'cosine');
    const shape: CosineShape = { rows: R, dim: D, experts: E };
    const Wp = param(g, `h.${o}.mlp.router.proj.weight`, [C, D], 'normal');
    const emb = param(g, `h.${o}.mlp.router.embedding.weight`, [D, E], 'normal');
    const logScale = param(g, `h.${o}.mlp.router.log_scale`, [1], 'ones', { decay: false });
    const P = L.t('router.proj', [R, D]);
    return {
      forward(g, l, input, logits) {
        g.op('forward', `h${l}.mlp.router.proj`, matmul, [{ m: R, n: D, k: C }], { A: input, B: Wp, C: P });
        g.op('forward', `h${l}.mlp.router`, moeCosineForward, [shape], { P, emb, logScale, logits });
      },
      backward(g, l, dlogits) {
        const dP = g.tensor(`h${l}.moe.router.dproj`, [R, D], 'activation');
        const cosIn = { P, emb, logScale, dlogits };
        g.op('backward', `h${l}.mlp.router.dproj`, moeCosineBackwardP, [shape], { ...cosIn, dP });
        g.op('backward', `h${l}.mlp.router.embedding.dW`, moeCosineBackwardEmb, [shape], { ...cosIn, demb: `grad.${emb}` });
        g.op('backward', `h${l}.mlp.router.log_scale.d`, moeCosineBackwardScale, [shape], { ...cosIn, dscale: `grad.${logScale}` });
        return { dOut: dP, W: Wp, width: D };
      },
    };
  },
};
