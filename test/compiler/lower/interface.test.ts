import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import type { Gpt2Spec } from '../../../compiler/graph/gpt2.js';
import { moeBlock } from '../../../compiler/graph/moe.js';
import { type CompiledTrial, compileGpt2, compileTrial } from '../../../compiler/lower/compile.js';
import { planInterface } from '../../../compiler/lower/interface.js';
import { STAT, statsLength } from '../../../compiler/reference/moe.js';
import { interfaceBuffers, planProblems } from '../../../compiler/plan/schema.js';
import type { PlanBuffer } from '../../../compiler/plan/types.js';
import { moeConfig, spec } from '../../runtime/train/moe-helpers.js';

// The Plan's interface names every buffer that is not an activation, once, as what it is; these
// are the plans of each model kind, checked buffer by buffer against its role and shape.

const dense = (o: Partial<Gpt2Spec> = {}, maxRegionBytes?: number) => compileGpt2({ ...spec, ...o }, undefined, {}, maxRegionBytes ? { maxRegionBytes } : {});
const moe = (o: Parameters<typeof moeConfig>[0], s: Partial<Gpt2Spec> = {}) => compileGpt2({ ...spec, ...s }, moeBlock({ ...spec, ...s }, moeConfig(o)));

function patchTrial(router: string): CompiledTrial {
  const text = `data blobs {
  source clusters
  valid 25%
  synthetic { clusters 3; patches 3; dim 8; noise 0.1; feature [0.5, 2]; distractor [0.5, 2]; samples 400; seed 3 }
}
model p {
  ffn 5
  moe { experts 3; top 1; noise 0.5; router ${router}; activation cubic; expert mlp }
}
train { steps 200; batch 16; optimizer adamw; lr 0.01; schedule constant; wd 0; clip 1 }`;
  const r = loadPipeline('mem.moe', { readFile: () => text });
  assert.deepEqual(r.diagnostics.map((d) => d.message), []);
  return compileTrial(r.trials[0]!.config, 'patch');
}

/** Where the interface names each buffer; asserts none is named twice and every non-activation buffer is named. */
function kinds(c: CompiledTrial): Map<string, string> {
  const io = c.plan.interface!;
  const at = new Map<string, string>();
  for (const [where, b] of interfaceBuffers(io)) {
    assert.ok(!at.has(b), `${c.plan.name}: '${b}' is named at ${at.get(b)} and ${where}`);
    at.set(b, where);
  }
  for (const b of c.plan.buffers) if (b.role !== 'activation') assert.ok(at.has(b.name), `${c.plan.name}: buffer '${b.name}' (${b.role}) is not in the interface`);
  assert.deepEqual(planProblems(c.plan), []);
  return at;
}

/** The role each interface place must have on the buffer it names. */
function checkRoles(c: CompiledTrial): void {
  const buf = new Map(c.plan.buffers.map((b) => [b.name, b]));
  const expect: [RegExp, PlanBuffer['role'][]][] = [
    [/^regions\/\d+\/params$/, ['param']], [/^regions\/\d+\/grads$/, ['grad']], [/^regions\/\d+\/[mv]$/, ['optimizer']], [/^regions\/\d+\/params16$/, ['param']],
    [/^views\/(params|params16)$/, ['param']], [/^views\/grads$/, ['grad']], [/^views\/rows$/, ['input', 'output', 'param', 'grad']],
    [/^optimizer\//, ['uniform']], [/^inputs\/rng$/, ['uniform']], [/^inputs\//, ['input']],
    [/^outputs\/logits$/, ['activation']], [/^outputs\//, ['output']], [/^stats\//, ['output']], [/^internal$/, ['input', 'output']],
  ];
  for (const [b, where] of kinds(c)) {
    const roles = expect.find(([re]) => re.test(where))?.[1];
    assert.ok(roles, `${where}: no expectation`);
    assert.ok(roles.includes(buf.get(b)!.role), `${c.plan.name}: ${where} names '${b}' of role ${buf.get(b)!.role}`);
  }
  // Each view lies in a region buffer of its kind.
  const io = c.plan.interface!;
  for (const [views, field] of [['params', 'params'], ['grads', 'grads'], ['params16', 'params16']] as const) {
    const regions = new Set(io.regions.map((r) => r[field]));
    for (const v of io.views[views]) assert.ok(regions.has(buf.get(v)!.region), `${v} lies in ${buf.get(v)!.region}, not a ${field} region`);
  }
  // Regions tile the layout end to end.
  let at = 0;
  for (const r of io.regions) {
    assert.equal(r.start, at);
    assert.equal(buf.get(r.params)!.bytes, 4 * r.floats);
    at += r.floats;
  }
  assert.equal(at, c.layout.total);
}

test('a dense plan: one region with its moments, tokens, targets, rng, loss, eval sums and logits', () => {
  const c = dense({ dropout: 0.1, clip: 1 });
  checkRoles(c);
  const io = c.plan.interface!;
  assert.equal(io.regions.length, 1);
  assert.deepEqual(Object.keys(io.regions[0]!).sort(), ['floats', 'grads', 'm', 'params', 'start', 'v']);
  assert.deepEqual(Object.keys(io.inputs).sort(), ['rng', 'targets', 'tokens']);
  assert.ok(io.outputs.logits);
  assert.deepEqual(io.stats, []);
  assert.equal(io.views.params.length, c.layout.offsets.size);
});

test('a dense plan cut into regions, with SGD (no moments) and with f16 weight copies', () => {
  const split = dense({ optimizer: 'sgd' }, 2048);
  checkRoles(split);
  assert.ok(split.plan.interface!.regions.length > 2);
  for (const r of split.plan.interface!.regions) assert.equal(r.m ?? r.v, undefined);
  const f16 = dense({ precision: 'f16' });
  checkRoles(f16);
  assert.ok(f16.plan.interface!.regions[0]!.params16);
  assert.ok(f16.plan.interface!.views.params16.length > 0);
});

test('MoE plans: per routing layer its statistics (with their layout) and its selections, labels for a label router', () => {
  const cases = [
    ['token', moe({}), 2, 2],
    ['sequence', moe({ unit: 'sequence', top: 1 }), 2, 1],
    ['global label', moe({ scope: 'global', router: 'label', label: 'language', zloss: 0, unit: 'sequence', top: 1 }), 1, 1],
    ['soft', moe({ dispatch: 'soft', top: 1, balance: 0, zloss: 0 }), 2, null],
  ] as const;
  for (const [what, c, layers, K] of cases) {
    checkRoles(c);
    const io = c.plan.interface!;
    assert.equal(io.stats.length, layers, what);
    for (const s of io.stats) {
      assert.equal(c.plan.buffers.find((b) => b.name === s.buffer)!.bytes, 4 * statsLength(s.experts), what);
      assert.deepEqual([s.scalars.balance, s.scalars.z, s.scalars.dropped, s.scalars.entropy, s.perExpert.counts, s.perExpert.score], [STAT.balance, STAT.z, STAT.dropped, STAT.entropy, STAT.counts, STAT.counts + s.experts]);
      assert.equal(s.selPerToken, K, what);
      assert.equal(s.sel === undefined, K === null, what);
    }
    assert.equal(io.inputs.labels !== undefined, what === 'global label', what);
  }
});

test('the patch model: x, y, cluster in, its own router step uniform when the router learns, statistics without selections', () => {
  const learned = patchTrial('learned');
  checkRoles(learned);
  const io = learned.plan.interface!;
  assert.deepEqual(Object.keys(io.inputs).sort(), ['cluster', 'rng', 'x', 'y']);
  assert.ok(io.optimizer.routerStep);
  assert.equal(io.outputs.logits, undefined);
  assert.equal(io.stats.length, 1);
  assert.equal(io.stats[0]!.sel, undefined);
  const frozen = patchTrial('frozen');
  checkRoles(frozen);
  assert.equal(frozen.plan.interface!.optimizer.routerStep, undefined);
});

test('a buffer the interface does not classify is refused at compile time, naming the module to classify it in', () => {
  const c = moe({});
  c.graph.tensor('h0.moe.extra', [3], 'output');
  const plan = { ...c.plan, buffers: [...c.plan.buffers, { name: 'h0.moe.extra', bytes: 12, role: 'output' as const }] };
  assert.throws(() => planInterface(plan, c.graph, c.layout, c.routing), /'h0\.moe\.extra' \(output\).*compiler\/lower\/interface\.ts/);
});

test('the plan schema refuses an interface that names a missing buffer or one buffer twice', () => {
  const c = moe({});
  const io = c.plan.interface!;
  assert.match(planProblems({ ...c.plan, interface: { ...io, inputs: { ...io.inputs, tokens: 'nope' } } }).join('\n'), /\/interface\/inputs\/tokens: unknown buffer 'nope'/);
  assert.match(planProblems({ ...c.plan, interface: { ...io, internal: [...io.internal, io.inputs.tokens!] } }).join('\n'), /buffer 'tokens' is also \/interface\/inputs\/tokens/);
});
