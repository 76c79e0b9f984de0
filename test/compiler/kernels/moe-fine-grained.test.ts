import { test } from 'node:test';
import { check } from './moe-chain.js';

// Fine-grained experts (DeepSeekMoE): many narrow experts and a large top-k, so the experts' hidden
// width (`expert-width`) is neither the model's width nor its ffn, and may be below one tile or not
// a multiple of 4. The whole MoE chain, forward and backward, against the CPU references.

const base = { mode: 'logits', score: 'softmax', normalize: true, salt: 5, seqLen: 1, rep: 1, balance: 0.2, zloss: 0.03 } as const;

test('MoE kernels, fine-grained: 16 experts of width 24 (width 40), top 6, dropless: match the references', async () => {
  await check({ ...base, tokens: 29, width: 40, experts: 16, top: 6, ffn: 24, capacity: 29 * 6 });
});
