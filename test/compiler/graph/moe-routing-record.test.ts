import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moeBlock, moeSelName, moeStatsName } from '../../../compiler/graph/moe.js';
import type { MoeConfig } from '../../../compiler/frontend/types.js';
import type { MoeRoutingRecord } from '../../../compiler/graph/moe-outputs.js';
import { compileGpt2 } from '../../../compiler/lower/compile.js';
import { moeConfig, spec } from '../../runtime/train/moe-helpers.js';

// The compiler's record of the layers that write MoE statistics (CompiledTrial.routing), which the
// runtime reads instead of working experts and assignments out of buffer names and sizes.

test('the compiled trial records each statistics layer, its experts and assignments per token', () => {
  const cases: [Partial<MoeConfig>, MoeRoutingRecord[]][] = [
    [{ top: 2 }, [{ layer: 0, experts: 3, selPerToken: 2 }, { layer: 1, experts: 3, selPerToken: 2 }]],
    [{ top: 1, scope: 'global' }, [{ layer: 0, experts: 3, selPerToken: 1 }]],
    [{ top: 2, unit: 'sequence', layers: [1] }, [{ layer: 1, experts: 3, selPerToken: 2 }]],
    [{ dispatch: 'soft', zloss: 0, experts: 2 }, [{ layer: 0, experts: 2, selPerToken: null }, { layer: 1, experts: 2, selPerToken: null }]],
  ];
  for (const [o, want] of cases) {
    const c = compileGpt2(spec, moeBlock(spec, moeConfig(o)));
    assert.deepEqual(c.routing, want, JSON.stringify(o));
    for (const r of c.routing) {
      const stats = c.plan.buffers.find((b) => b.name === moeStatsName(r.layer));
      assert.equal(stats?.bytes, 4 * (4 + 2 * r.experts), `layer ${r.layer}: the statistics output holds ${r.experts} experts`);
      const sel = c.plan.buffers.find((b) => b.name === moeSelName(r.layer));
      assert.equal(sel?.bytes ?? null, r.selPerToken === null ? null : 4 * spec.batch * spec.context * r.selPerToken, `layer ${r.layer}: selections`);
    }
  }
  assert.deepEqual(compileGpt2(spec).routing, [], 'a dense model has none');
});
