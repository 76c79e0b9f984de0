import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { PATCH_EXPERTS, PATCH_ROUTER } from '../../../compiler/graph/patches.js';
import { compileTrial } from '../../../compiler/lower/compile.js';

// The keys Chen et al. 2022's setup needs (issue 16): defaults, ranges, diagnostics at their line,
// and what each does to the compiled patch model. No GPU.

const source = (o: { synthetic?: string; moe?: string; train?: string; model?: string; extra?: string } = {}) => `data blobs {
  source clusters
  valid 25%
  synthetic { clusters 3; patches 3; dim 8; samples 40; ${o.synthetic ?? ''} }
}
model p {
  ffn 5
  moe { experts ${o.model ?? '3'}; top 1; activation cubic; ${o.moe ?? ''} }
}
train { steps 10; lr 0.001; ${o.train?.includes('optimizer') ? '' : 'optimizer sgd; '}${o.train ?? ''} }
${o.extra ?? ''}`;

function load(text: string) {
  const r = loadPipeline('mem.moe', { readFile: () => text });
  return { trials: r.trials, diagnostics: r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.span ? `${d.span.line}:${d.span.col} ` : ''}${d.message}`) };
}

function errorAt(text: string, line: number, re: RegExp): void {
  const { diagnostics } = load(text);
  assert.ok(diagnostics.some((d) => d.startsWith(`${line}:`) && re.test(d)), `expected ${re} at line ${line}; got:\n${diagnostics.join('\n')}`);
}

test('defaults: the keys leave today\'s model and data unchanged', () => {
  const { trials, diagnostics } = load(source());
  assert.deepEqual(diagnostics, []);
  const c = trials[0]!.config;
  assert.deepEqual([c.train.routerLr, c.train.routerOptimizer, c.train.fullBatch], [null, null, false]);
  assert.deepEqual([c.model.moe!.init, c.model.moe!.initScale], ['normal', null]);
  const syn = c.data['blobs']!.synthetic;
  assert.deepEqual([syn.centre, syn.scale, syn.seed], [[0.5, 2], 1, 0]);
  const k = compileTrial(c, 'x');
  assert.deepEqual(k.patch!.init, { kind: 'normal', std: 0.1 });
  assert.equal(k.patch!.routerLrScale, 1);
  assert.equal(k.patch!.batch, 16);
  assert.deepEqual(k.graph.ops.filter((o) => o.phase === 'update').map((o) => o.name), ['grad_norm.partial', 'grad_norm', `sgd.${PATCH_EXPERTS}`, `sgd.${PATCH_ROUTER}`]);
});

test('router-lr and router-optimizer: the router\'s own rate (scaled with the schedule) and optimiser', () => {
  const { trials, diagnostics } = load(source({ train: 'optimizer ngd; router-lr 0.1; router-optimizer adamw' }));
  assert.deepEqual(diagnostics, []);
  const k = compileTrial(trials[0]!.config, 'x');
  assert.ok(Math.abs(k.patch!.routerLrScale - 100) < 1e-9);
  assert.deepEqual(k.graph.ops.filter((o) => o.phase === 'update').map((o) => o.name), ['ngd.blocks', `adamw.${PATCH_ROUTER}`]);
  assert.ok(k.plan.buffers.some((b) => b.name === 'adam.router') && k.plan.buffers.some((b) => b.name === 'adam.m'), 'the router\'s uniform and its moments');
  const router = k.graph.ops.find((o) => o.name === `adamw.${PATCH_ROUTER}`)!;
  assert.ok(router.bind.includes('adam.router'));
  // Under ngd the router defaults to plain gradient descent; under adamw to AdamW.
  const ngd = compileTrial(load(source({ train: 'optimizer ngd' })).trials[0]!.config, 'y');
  assert.deepEqual(ngd.graph.ops.filter((o) => o.phase === 'update').map((o) => o.name), ['ngd.blocks', `sgd.${PATCH_ROUTER}`]);
  const adam = compileTrial(load(source({ train: 'optimizer adamw' })).trials[0]!.config, 'z');
  assert.ok(adam.graph.ops.some((o) => o.name === `adamw.${PATCH_ROUTER}`));
  errorAt(source({ train: 'router-lr -0.1' }), 10, /'router-lr' must be at least 0/);
  errorAt(source({ train: 'router-lr 1e9' }), 10, /'router-lr' must be at most 1000/);
  errorAt(source({ train: 'router-optimizer ngd' }), 10, /unknown router-optimizer 'ngd'/);
  errorAt(source({ model: '1', train: 'router-lr 0.1' }), 10, /'router-lr' has nothing to train: the single model/);
  errorAt(source({ moe: 'router frozen', train: 'router-optimizer sgd' }), 10, /'router-optimizer' has nothing to train: a frozen router/);
  assert.deepEqual(load(source({ model: '1', train: 'router-lr none' })).diagnostics, [], 'none: the default, allowed for any model');
  errorAt(source({ train: 'router-wd 0.5' }), 10, /'router-wd' is not lowered for the patch model/);
});

test('router-lr and router-wd on a language model: its router parameters get their own rate and decay; where there is none to train, an error', () => {
  const lm = (moe: string, train: string) => `data d { source brown }\nmodel m { layers 1; width 16; heads 2; ${moe} }\ntrain { ${train} }\n`;
  const ok = load(lm('moe { experts 2; top 1 }', 'router-lr 0.01; router-wd 0'));
  assert.deepEqual(ok.diagnostics, []);
  const k = compileTrial(ok.trials[0]!.config, 'lm');
  assert.deepEqual(k.spec.router, { lrScale: 0.01 / 6e-4, wd: 0 });
  const router = k.graph.ops.filter((o) => o.phase === 'update' && o.bind.includes('adam.router'));
  assert.equal(router.length, 1, 'one update of the router weight on its own uniform');
  assert.equal(compileTrial(load(lm('moe { experts 2; top 1 }', '')).trials[0]!.config, 'plain').spec.router, undefined, 'no setting: no router group');
  errorAt(lm('', 'router-lr 0.1'), 3, /'router-lr' has nothing to train: a dense model has no router/);
  errorAt(lm('moe { experts 2; top 1; router random; balance 0 }', 'router-wd 0.1'), 3, /'router-wd' has nothing to train: a random router has no trained parameters/);
  errorAt(lm('moe { experts 2; top 1 }', 'optimizer adam; router-wd 0.1'), 3, /optimizer adam has none/);
});

test('init and init-scale: PyTorch\'s fan-in uniform start times a scale, or a normal of that std', () => {
  const fan = compileTrial(load(source({ moe: 'init fan-in; init-scale 0.001' })).trials[0]!.config, 'x');
  assert.deepEqual(fan.graph.get(PATCH_EXPERTS).init, { kind: 'uniform', bound: 0.001 / Math.sqrt(8) });
  const pt = compileTrial(load(source({ moe: 'init fan-in' })).trials[0]!.config, 'x');
  assert.deepEqual(pt.patch!.init, { kind: 'uniform', bound: 1 / Math.sqrt(8) }, 'scale 1 by default: PyTorch\'s own');
  const n = compileTrial(load(source({ moe: 'init-scale 0.5' })).trials[0]!.config, 'x');
  assert.deepEqual(n.patch!.init, { kind: 'normal', std: 0.5 });
  errorAt(source({ moe: 'init kaiming' }), 8, /unknown init 'kaiming'/);
  errorAt(source({ moe: 'init-scale 0' }), 8, /'init-scale' must be greater than 0/);
  errorAt('data d { source brown }\nmodel m { layers 1; width 16; heads 2; moe { experts 2; init fan-in } }\n', 2, /'init' applies only to the patch model/);
});

test('full-batch: every training sample in each step; batch is then refused', () => {
  const { trials, diagnostics } = load(source({ train: 'full-batch true' }));
  assert.deepEqual(diagnostics, []);
  const k = compileTrial(trials[0]!.config, 'x');
  assert.equal(k.patch!.batch, 30, '40 samples less 25% validation');
  assert.equal(k.patch!.fullBatch, true);
  assert.equal(k.graph.get('x').shape[0], 30);
  errorAt(source({ train: 'full-batch true; batch 8' }), 10, /'batch' does not apply with full-batch true/);
  errorAt(source({ train: 'full-batch maybe' }), 10, /'full-batch' expects true or false/);
  errorAt('data d { source brown }\nmodel m { layers 1; width 16; heads 2 }\ntrain { full-batch true }\n', 3, /'full-batch' applies only to the patch model/);
});

test('synthetic centre, scale and seed: ranges, positions, and seed none = each trial\'s seed', () => {
  errorAt(source({ synthetic: 'centre [2, 1]' }), 4, /'centre' range \[2, 1\] is reversed/);
  errorAt(source({ synthetic: 'centre [1]' }), 4, /'centre' needs exactly 2 values/);
  errorAt(source({ synthetic: 'scale 0' }), 4, /'scale' must be greater than 0/);
  errorAt(source({ synthetic: 'seed -1' }), 4, /'seed' must be at least 0/);
  errorAt(source({ synthetic: 'seed 1.5' }), 4, /'seed' must be a whole number/);
  const fixed = load(source({ synthetic: 'seed 9', extra: 'sweep { seeds 2 }' }));
  assert.deepEqual(fixed.trials.map((t) => [t.seed, t.config.data['blobs']!.synthetic.seed]), [[1, 9], [2, 9]], 'one data set for every model seed');
  const per = load(source({ synthetic: 'seed none', extra: 'sweep { seeds 2 }' }));
  assert.deepEqual(per.trials.map((t) => [t.seed, t.config.data['blobs']!.synthetic.seed]), [[1, 1], [2, 2]], 'a data set per seed');
});

test('a preset may set the sweep\'s seeds (chen2022.moe: small 5, full 10), with a diagnostic when misused', () => {
  const text = (preset: string) => `${source()}\nsweep { seeds 3 }\npreset small { ${preset} }\n`;
  const run = (preset: string) => loadPipeline('mem.moe', { readFile: () => text(preset), preset: 'small' });
  assert.deepEqual(run('seeds 5').trials.map((t) => t.seed), [1, 2, 3, 4, 5]);
  assert.deepEqual(run('seeds [7, 9]').trials.map((t) => t.seed), [7, 9]);
  assert.deepEqual(loadPipeline('mem.moe', { readFile: () => text('seeds 5') }).trials.map((t) => t.seed), [1, 2, 3], 'no preset: the sweep\'s own');
  const bad = run('seeds 0').diagnostics.filter((d) => d.severity === 'error');
  assert.ok(bad.some((d) => d.span?.line === 13 && /a preset's 'seeds' must be a count of at least 1/.test(d.message)), bad.map((d) => `${d.span?.line} ${d.message}`).join('\n'));
  const noSweep = loadPipeline('mem.moe', { readFile: () => `${source()}\npreset small { seeds 2 }\n`, preset: 'small' }).diagnostics;
  assert.ok(noSweep.some((d) => /sets seeds, but the file has no sweep block/.test(d.message)));
});
