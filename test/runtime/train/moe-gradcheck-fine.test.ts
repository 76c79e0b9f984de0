import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countParams } from '../../../compiler/frontend/params.js';
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import { activeParams, moeBlock } from '../../../compiler/graph/moe.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { gradCheck, moeConfig, spec } from './moe-helpers.js';

// Fine-grained experts with shared experts (DeepSeekMoE) in the tiny model of moe-helpers.ts
// (width 12, ffn 10): routed experts of their own width (expert-width), shared experts of another
// (shared-width), the dense layers at ffn. Finite differences of the whole model, the parameter
// tensors' shapes and the plan's parameter counts against the front end's.

const fine: [string, Partial<MoeConfig>][] = [
  ['6 experts of width 5 (ffn/2), top 4, 1 shared expert of width 3, both layers', { experts: 6, top: 4, expertWidth: 5, shared: 1, sharedWidth: 3 }],
  ['MoE in layer 1 only (layer 0 dense at ffn 10): 5 experts of width 7, top 3, 2 shared of width 13, capacity 0.8 (drops)', { experts: 5, top: 3, expertWidth: 7, shared: 2, sharedWidth: 13, layers: [1], dropless: false, capacity: 0.8 }],
];

const model = (moe: MoeConfig) => ({ name: 'm', layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, dropout: 0, vocab: spec.vocab, context: spec.context, moe });

test('fine-grained + shared experts: parameter shapes at their own widths; the plan counts what the front end counts', () => {
  for (const [what, o] of fine) {
    const moe = moeConfig(o);
    const c = compileGpt2(spec, moeBlock(spec, moe));
    const l = moe.layers[0]!;
    const C = spec.width;
    assert.deepEqual(c.graph.get(`h.${l}.mlp.experts.c_fc.weight`).shape, [moe.experts, C, moe.expertWidth], what);
    assert.deepEqual(c.graph.get(`h.${l}.mlp.experts.c_proj.weight`).shape, [moe.experts, moe.expertWidth, C], what);
    assert.deepEqual(c.graph.get(`h.${l}.mlp.shared_experts.0.c_fc.weight`).shape, [C, moe.sharedWidth], what);
    assert.deepEqual(c.graph.get(`h.${l}.mlp.shared_experts.0.c_proj.weight`).shape, [moe.sharedWidth, C], what);
    if (!moe.layers.includes(0)) assert.deepEqual(c.graph.get('h.0.mlp.c_fc.weight').shape, [C, spec.ffn], 'the dense layer keeps ffn');
    assert.deepEqual({ total: c.layout.count, active: activeParams(c.graph, moe) }, countParams(model(moe)), what);
  }
});

for (const [what, o] of fine) {
  test(`fine-grained + shared experts: gradients match finite differences: ${what}`, async () => {
    const { failures, checked, skipped } = await gradCheck(moeConfig(o));
    assert.deepEqual(failures, []);
    assert.ok(checked >= 2 * skipped && checked >= 12, `checked ${checked}, skipped ${skipped} (routing changed)`);
  });
}
