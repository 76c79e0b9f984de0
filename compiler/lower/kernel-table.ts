// Every op kind the graph may use and its forms: one static table, no registration by import side
// effect. Arguments are plain JSON, so identical ops (the same shape in every layer) share one
// kernel and one pipeline. Which form lowers an op is decided per kernel by the lowering target
// (compiler/lower/target.ts); a bench that compares forms passes its own through the target.
import { adamw, adamwClip } from '../kernels/adamw.js';
import { dropoutBackward, dropoutForward } from '../kernels/dropout.js';
import { gradNormPartial, gradNormTotal } from '../kernels/gradnorm.js';
import { attentionBackwardDkv, attentionBackwardDq, attentionForward } from '../kernels/attention-subgroup.js';
import { crossEntropyBackward, crossEntropyForward, crossEntropyMean } from '../kernels/crossentropy.js';
import { crossEntropyPartBackward, crossEntropyPartForward, crossEntropyPartLoss } from '../kernels/crossentropy-parts.js';
import { biasGrad, evalSum, fill, geluBackward, geluForward, scaleAdd } from '../kernels/elementwise.js';
import { embeddingForward, embeddingWpeGrad, embeddingWteGrad } from '../kernels/embedding.js';
import { layerNormBackward, layerNormForward, layerNormParamGrad } from '../kernels/layernorm.js';
import { matmul } from '../kernels/matmul.js';
import { castF16 } from '../kernels/cast.js';
import { sgd } from '../kernels/sgd.js';
import { ngd } from '../kernels/ngd.js';
import type { KernelDefinition, KernelForms } from '../kernels/definition.js';
import { moeCombine, moeCombineBackward } from '../kernels/moe-combine.js';
import { moeDispatch } from '../kernels/moe-dispatch.js';
import { moeBiasGrad, moeGroupedMatmul, moeWeightGrad } from '../kernels/moe-grouped-subgroup.js';
import { moeAuxLoss, moeRouterBackward } from '../kernels/moe-router.js';
import { moePoolBackward, moePoolForward } from '../kernels/moe-pool.js';
import { moeRouterNoise } from '../kernels/moe-noise.js';
import { moeSoftCombine, moeSoftCombineBackward, moeSoftDispatch, moeSoftDispatchBackward, moeSoftStats, moeSoftWeights } from '../kernels/moe-soft.js';
import { patchEval, patchForward, patchLoss, patchRouterGrad, patchWeightGrad, patchWeightGradPartial } from '../kernels/patch-model.js';
import { routerForward, routers } from '../routing/index.js';
import { moeExpertChoiceDispatch, moeExpertChoiceRouter, moeExpertChoiceStats } from '../kernels/moe-expert-choice.js';
import { moeBiasLoad, moeBiasUpdate } from '../kernels/moe-bias.js';
import { moeSeqBalance } from '../kernels/moe-seq-balance.js';
import { moeAuxParts, moeLoadSummary, moeWindowAdd } from '../kernels/moe-diagnostics.js';

const defined = (...defs: KernelDefinition[]) => Object.fromEntries(defs.map((d) => [d.kind, d.forms]));

/** The op kinds and their forms (see compiler/lower/target.ts for when each form applies). */
export const kernelTable: Readonly<Record<string, KernelForms>> = {
  // Subgroup matmul tiling: see matmulTiling in compiler/lower/kernels.ts for the measurements.
  ...defined(matmul),
  ...defined(layerNormForward, layerNormBackward, layerNormParamGrad, embeddingForward, embeddingWteGrad, embeddingWpeGrad),
  // The loss; the LM head over vocabulary parts (wte split under the binding limit, compiler/graph/lm-head.ts).
  ...defined(crossEntropyForward, crossEntropyMean, crossEntropyBackward, crossEntropyPartForward, crossEntropyPartLoss, crossEntropyPartBackward),
  // Key (query) rows shared by subgroupBroadcast: 1.9-5.4× the plain forms at the bench models'
  // shapes, training steps 1.2-1.3× faster (kernels/attention-subgroup.ts, bench/attention-compare.ts).
  ...defined(attentionForward, attentionBackwardDq, attentionBackwardDkv),
  // Small element-wise kernels, dropout, the gradient norm; the optimiser pass (compiler/lower/optimiser.ts).
  ...defined(fill, geluForward, geluBackward, biasGrad, scaleAdd, evalSum, dropoutForward, dropoutBackward, gradNormPartial, gradNormTotal),
  ...defined(adamw, adamwClip, sgd, ngd, castF16),
  // Mixture-of-Experts layers (compiler/graph/moe*.ts).
  ...defined(routerForward, moeGroupedMatmul, moeWeightGrad, moeBiasGrad,moeRouterBackward, moeAuxLoss, moeDispatch, moeCombine, moeCombineBackward, moePoolForward, moePoolBackward, moeRouterNoise),
  ...defined(moeSoftWeights, moeSoftDispatch, moeSoftCombine, moeSoftStats, moeSoftCombineBackward, moeSoftDispatchBackward),
  // Expert choice (routing/expert-choice.ts), auxiliary-loss-free balancing, the load diagnostics and the loss's parts.
  ...defined(moeExpertChoiceRouter, moeExpertChoiceDispatch, moeExpertChoiceStats),
  ...defined(moeBiasLoad, moeBiasUpdate, moeAuxParts, moeWindowAdd, moeLoadSummary),
  // The sequence-wise balance loss (balance-over sequence).
  ...defined(moeSeqBalance),
  // Each router plug-in's own kernels.
  ...Object.fromEntries(Object.values(routers).flatMap((r) => Object.entries(r.kernels ?? {}).map(([kind, gen]) => [kind, { portable: gen as KernelForms['portable'] }]))),
  ...defined(...Object.values(routers).flatMap((r) => r.definitions ?? [])),
  // The patch model of the synthetic cluster task (compiler/graph/patches.ts).
  ...defined(patchForward, patchLoss, patchWeightGradPartial, patchWeightGrad, patchRouterGrad, patchEval),
};
