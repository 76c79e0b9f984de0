import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline } from '../../compiler/frontend/index.js';
import { compileTrial } from '../../compiler/lower/compile.js';
import { compileToFit, fittingMicroBatch, perMicroBatch } from '../../compiler/lower/fit.js';
import { profileNamed } from '../../compiler/lower/profiles.js';
import { defaultLimits, limitProblems, summarize } from '../../compiler/lower/summary.js';

// Every trial of every pipeline, with no preset and with each preset it has, compiles (portable,
// no GPU) and is checked against WebGPU's default limits and lavapipe's: no activation buffer or
// binding is over them (the chunked LM head keeps the B×T×V logits out of every binding), or, where
// one is, the compiler finds the micro-batch and accumulation that fit (and runs them, see below). A
// plan may otherwise be refused only for its parameters (params, grads and optimizer state are one
// buffer each), and then only if those alone exceed the binding limit. GPT-2 small fits the 24 GB
// NVIDIA profile, and WebGPU's default limits (wte in vocabulary parts, parameters in regions)
// wherever no single parameter tensor is over a binding. A trial whose activations are over a limit
// compiles to the fitting micro-batch by itself (compileToFit), or is refused naming it where the
// trial computes a quantity per micro-batch (the balance loss, capacity, expert choice over the batch).

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const pipelines = readdirSync(path.join(root, 'pipelines')).filter((f) => f.endsWith('.moe')).sort();
const MODEL_BYTES = ['param', 'grad', 'optimizer'];

function presetsOf(file: string): string[] {
  const load = loadPipeline(file);
  assert.ok(load.ok, `${file} checks clean`);
  return [...new Set([...load.sources.values()].flatMap((src) => [...src.matchAll(/^preset\s+([\w-]+)/gm)].map((m) => m[1]!)))];
}

for (const file of pipelines) {
  const full = path.join(root, 'pipelines', file);
  for (const preset of [undefined, ...presetsOf(full)]) {
    test(`pipelines/${file}${preset ? ` --preset ${preset}` : ''}: every trial compiles within WebGPU's and lavapipe's limits, or is refused for its parameters alone`, () => {
      const load = loadPipeline(full, preset ? { preset } : {});
      assert.ok(load.ok, `${file} checks clean${preset ? ` with --preset ${preset}` : ''}`);
      for (const t of load.trials) {
        const c = compileTrial(t.config, t.id);
        const s = summarize(c);
        for (const limits of [defaultLimits, profileNamed('lavapipe')!]) {
          const problems = limitProblems(c, limits);
          const where = `${t.id} (${t.name}) on ${limits.name ?? 'webgpu'}`;
          if (!problems.length) continue;
          const largestModelBuffer = Math.max(...c.plan.buffers.filter((b) => MODEL_BYTES.includes(b.role)).map((b) => b.bytes));
          if (largestModelBuffer > limits.maxStorageBufferBindingSize) continue;
          assert.ok(problems.every((p) => p.ptr !== '/model'), `${where}: refused for parameters that fit: ${problems[0]!.message}`);
          const split = fittingMicroBatch(t.config, limits);
          assert.ok(split, `${where}: activations over the limits and no micro-batch fits: ${problems[0]!.message}`);
          assert.equal(split.batch * split.accumulate, t.config.train.batch * t.config.train.accumulate);
          // The compiler runs that micro-batch by itself, or (where the trial computes something over
          // the micro-batch as a whole) refuses, naming it.
          const fit = compileToFit(t.config, t.id, limits);
          if ('compiled' in fit) {
            assert.deepEqual([fit.split?.batch, fit.split?.accumulate], [split.batch, split.accumulate], `${where}: split as found`);
            assert.match(summarize(fit.compiled).notes.join('\n'), new RegExp(`batch ${t.config.train.batch} runs as ${split.accumulate / t.config.train.accumulate} micro-batches of ${split.batch}`));
          } else {
            assert.ok('refusal' in fit, `${where}: neither split nor refused for a per-micro-batch quantity`);
            assert.match(fit.refusal.hint, new RegExp(`set train\\.batch ${split.batch} and train\\.accumulate ${split.accumulate}`));
            assert.ok(perMicroBatch(t.config, split.batch).length > 0);
          }
        }
        if (preset === 'gpt2-small') {
          assert.equal(c.spec.layers, 12);
          assert.equal(c.spec.width, 768);
          assert.equal(c.spec.vocab, 50257);
          assert.equal(s.tokensPerStep, 32 * 1024);
          assert.match(s.notes.join('\n'), /LM head and embedding cut over the vocabulary: 2 parts of 25129 rows/);
          // Fits WebGPU's defaults unless one parameter tensor alone is over a binding (16 experts'
          // stacked weights, 16 × 768 × 3072 floats = 144 MiB, or the same-total dense FFN; not cut yet).
          // Activations over a binding are left out: the micro-batch found above fits them.
          const tensors = [...c.graph.tensors.values()];
          const parted = new Set(tensors.filter((x) => x.kind === 'param' && x.viewOf).map((x) => x.viewOf!));
          const largestTensor = Math.max(...tensors.filter((x) => x.kind === 'param' && !x.viewOf && !parted.has(x.name)).map((x) => 4 * x.shape.reduce((a, b) => a * b, 1)));
          const problems = limitProblems(c, defaultLimits).filter((p) => p.ptr !== '/train/batch');
          if (largestTensor <= defaultLimits.maxStorageBufferBindingSize) {
            assert.deepEqual(problems.map((p) => p.message), [], `${t.id} (${t.name}) does not fit WebGPU's default limits`);
          } else assert.ok(problems.every((p) => p.ptr === '/model'), `${t.id} (${t.name}): refused for more than its ${largestTensor}-byte parameter tensor`);
          // Up to 8 experts (about 520 M parameters); the 16-expert and same-total dense trials need more than 24 GB.
          if (t.params_count.total <= 600e6) {
            assert.deepEqual(limitProblems(c, profileNamed('nvidia-24gb')!).map((p) => p.message), [], `${t.id} (${t.name}) does not fit nvidia-24gb`);
          }
        }
      }
    });
  }
}
