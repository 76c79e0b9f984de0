// Shared by the MoE training tests: a tiny model, MoE settings, and the whole-model
// finite-difference check (the method of gradcheck.test.ts) with routing-change detection.
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { rng } from '../../../compiler/reference/random.js';
import { GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';

const H = 1e-2;
const REL = 0.03;
const ABS = 3e-5;

export const spec: Gpt2Spec = {
  name: 'moe-gradcheck', layers: 2, width: 12, heads: 3, ffn: 10, vocab: 11, context: 5, dropout: 0,
  batch: 2, accumulate: 1, betas: [0.9, 0.95], eps: 1e-8, wd: 0, clip: 0,
};

export const moeConfig = (o: Partial<MoeConfig> = {}): MoeConfig => ({
  every: 1, experts: 3, top: 2, unit: 'token', prefix: null, scope: 'layer', router: 'learned', label: null, dim: 32,
  gate: 'softmax-topk', normalize: false, noise: 0, noiseDist: 'gaussian', capacity: 1.25, dropless: true, balance: 0.1, zloss: 0.01, shared: 0,
  expert: 'mlp', activation: 'gelu', second: 'top', dispatch: 'sparse', slots: 1, layers: [0, 1], ...o,
});

export const labels = new Uint32Array([4, 2]);

export function batch(seed: number) {
  const r = rng(seed);
  const n = spec.batch * spec.context;
  return {
    tokens: Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab)),
    targets: Uint32Array.from({ length: n }, () => Math.floor(r() * spec.vocab)),
  };
}

/**
 * Central differences of the training loss (cross-entropy + balance + z-loss) against the analytic
 * gradient for the largest two and one random element of every trainable tensor. Top-k routing
 * and capacity are piecewise constant: a perturbation that changes any layer's routing (its
 * selected experts or slots) is not differentiable there and is skipped; few may be.
 */
export async function gradCheck(moe: MoeConfig, seed = 0, accumulate = 1, setup?: (m: GpuModel) => void): Promise<{ failures: string[]; checked: number; skipped: number }> {
  // With accumulation a micro-step's loss and gradients are both scaled by 1/accumulate.
  const s = { ...spec, accumulate };
  const compiled = compileGpt2(s, moeBlock(s, moe));
  const m = await GpuModel.create(await testGpu(), compiled);
  const failures: string[] = [];
  let checked = 0;
  let skipped = 0;
  try {
    m.initParams(7);
    const r = rng(99);
    const params = (await m.readFlat('params')).map((v) => v + 0.2 * (r() - 0.5));
    m.writeParams(params);
    // State beyond the parameters (e.g. a routing bias) that the check should run with.
    setup?.(m);
    const b = batch(5);
    const routes = async () => {
      // A forward pass alone leaves the routing tensors in place (nothing later reuses their memory).
      m.ex.run('eval_step');
      const out: number[] = [];
      // sel lives until the router backward, which only a logits router has.
      // Soft MoE routes nothing: its softmaxes are smooth, no perturbation changes a decision.
      const names = moe.dispatch === 'soft' ? [] : moe.router === 'random' || moe.router === 'label' ? ['pos'] : ['sel', 'pos'];
      const routers = moe.scope === 'global' ? [Math.min(...moe.layers)] : moe.layers;
      for (const l of routers) for (const t of names) out.push(...new Uint32Array(await m.ex.readBytes(`h${l}.moe.${t}`)));
      return out.join();
    };
    // seed != 0 trains (router noise on, fixed by seed and step); routes() then sees the same noise.
    m.gradients(b.tokens, b.targets, seed, 1, labels);
    const grads = await m.readFlat('grads');
    const base = await routes();
    const lossAt = async (flat: Float32Array) => {
      m.writeParams(flat);
      m.gradients(b.tokens, b.targets, seed, 1, labels);
      const loss = await m.trainLoss();
      return { loss, same: (await routes()) === base };
    };
    for (const [name, offset] of compiled.layout.offsets) {
      const t = compiled.graph.get(name);
      // The MoE layers' own parameters, and the LayerNorm and token embedding upstream of them
      // (their gradients pass through the MoE input gradient); the rest is the dense gradcheck's.
      if (t.trainable === false || !/^(h\.\d+\.mlp\.|h\.\d+\.ln_2\.|wte)/.test(name)) continue;
      const n = t.shape.reduce((a, c) => a * c, 1);
      const g = grads.subarray(offset, offset + n);
      const byMag = Array.from(g.keys()).sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!));
      for (const i of new Set([byMag[0]!, Math.floor(r() * n)])) {
        const p = params.slice();
        p[offset + i] = params[offset + i]! + H;
        const up = await lossAt(p);
        p[offset + i] = params[offset + i]! - H;
        const down = await lossAt(p);
        if (!up.same || !down.same) { skipped++; continue; }
        checked++;
        const fd = (up.loss - down.loss) / (2 * H);
        const an = g[i]!;
        if (!(Math.abs(fd - an) <= REL * Math.abs(an) + ABS)) failures.push(`${name}[${i}]: analytic ${an.toExponential(4)} vs finite difference ${fd.toExponential(4)}`);
      }
    }
  } finally {
    m.destroy();
  }
  return { failures, checked, skipped };
}

export const variants: [string, Partial<MoeConfig>, number?, number?][] = [
  ['token, learned, softmax-topk, dropless, balance + z-loss', {}],
  ['token, learned, topk-softmax, capacity 0.6 (drops)', { gate: 'topk-softmax', dropless: false, capacity: 0.6 }],
  ['token, learned, sigmoid renormalised, top 1 of 3, MoE in layer 1 only', { gate: 'sigmoid', normalize: true, top: 1, layers: [1] }],
  ['token, learned, noisy top-k (noise 0.5, training)', { noise: 0.5 }, 1234],
  ['token, learned, GShard sampled second expert (training)', { second: 'sampled', normalize: true }, 99],
  ['token, learned, 1 shared expert + routed experts', { shared: 1 }],
  ['token, learned, linear experts', { expert: 'linear' }],
  ['token, learned, cubic MLP experts (Chen et al.)', { activation: 'cubic' }],
  ['sequence (mean of the whole sequence), learned, softmax-topk renormalised', { unit: 'sequence', normalize: true }],
  ['sequence (prefix 3), learned, top 1 (Switch)', { unit: 'sequence', prefix: 3, top: 1 }],
  ['token, frozen router', { router: 'frozen' }],
  ['token, cosine router (dim 4, learned temperature)', { router: 'cosine', dim: 4 }],
  ['sequence (prefix 2), cosine router, sigmoid gates', { router: 'cosine', dim: 5, unit: 'sequence', prefix: 2, gate: 'sigmoid' }],
  ['token, random router', { router: 'random', balance: 0, zloss: 0 }],
  ['global scope (layer 0 routes both layers), token, learned, balance + z-loss', { scope: 'global' }],
  ['global scope, sequence (prefix 3), cosine router, accumulate 2 (aux losses scaled too)', { scope: 'global', unit: 'sequence', prefix: 3, router: 'cosine', dim: 4 }, 0, 2],
  ['sequence, label router, top 2', { router: 'label', label: 'genre', top: 2, unit: 'sequence', balance: 0, zloss: 0 }],
  ['token, learned, uniform router noise U(0, 0.8) (training)', { noise: 0.8, noiseDist: 'uniform' }, 4321],
  ['Soft MoE, 3 experts x 1 slot, GELU MLP experts', { dispatch: 'soft', slots: 1, zloss: 0 }],
  ['Soft MoE, 3 experts x 2 slots, GELU MLP experts', { dispatch: 'soft', slots: 2, zloss: 0 }],
  ['Soft MoE, 2 experts x 2 slots, linear experts, MoE in layer 1 only, accumulate 2', { dispatch: 'soft', experts: 2, slots: 2, zloss: 0, expert: 'linear', layers: [1] }, 0, 2],
];

