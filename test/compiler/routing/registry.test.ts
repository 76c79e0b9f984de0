import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countParams } from '../../../compiler/frontend/index.js';
import { moeSchema } from '../../../compiler/frontend/schema.js';
import type { MoeConfig, RouterKind } from '../../../compiler/frontend/types.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { routers } from '../../../compiler/routing/index.js';
import { moeConfig, spec } from '../../runtime/train/moe-helpers.js';

// The router plug-in table against the schema and the graph: every kind the language accepts has a
// plug-in, and each plug-in's parameter count is what its graph declares.

const kinds = moeSchema.properties!['router']!.enum as RouterKind[];
/** The settings each kind needs to lower (a label; no z-loss without logits). */
const settings = (router: RouterKind): Partial<MoeConfig> =>
  router === 'label' ? { router, label: 'genre', balance: 0, zloss: 0 } : routers[router].scores ? { router, dim: 5 } : { router, balance: 0, zloss: 0 };

test('every router kind of the schema has exactly one plug-in, under its own name', () => {
  assert.deepEqual([...kinds].sort(), Object.keys(routers).sort());
  for (const k of kinds) assert.equal(routers[k].kind, k);
});

test("each router kind's parameter count is what its graph declares, per routing layer", () => {
  const model = (moe: MoeConfig) => ({ name: 'm', layers: spec.layers, width: spec.width, heads: spec.heads, ffn: spec.ffn, dropout: 0, vocab: spec.vocab, context: spec.context, moe });
  const none = compileGpt2(spec, moeBlock(spec, moeConfig(settings('hash')))).layout.count;
  for (const k of kinds) {
    for (const scope of ['layer', 'global'] as const) {
      const moe = moeConfig({ ...settings(k), scope });
      const c = compileGpt2(spec, moeBlock(spec, moe));
      assert.equal(c.layout.count, countParams(model(moe)).total, `${k}, ${scope}`);
      const routing = scope === 'global' ? 1 : moe.layers.length;
      assert.equal(c.layout.count - none, routing * routers[k].params(spec.width, moe), `${k}, ${scope}: the router's own parameters`);
    }
  }
});
