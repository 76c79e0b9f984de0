import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { rng } from '../../../compiler/reference/random.js';
import { UserError } from '../../../grammar/user-error.js';
import { torchMissing, torchPython, torchSkipReason } from '../../../runtime/bench/torch.js';
import { openTrained } from '../../../runtime/eval/trained.js';
import { exportTrial } from '../../../runtime/export/export.js';
import { readSafetensors } from '../../../runtime/store/safetensors.js';
import { fixtureTrial, tinyPipeline } from './fixture.js';

// `moec export` against PyTorch: the exported files load in PyTorch (a GPT-2 export through an
// independent GPT-2 that follows transformers' GPT2LMHeadModel conventions, since transformers is
// not installable here; a moec export through the modeling_moec.py it ships) and give moec's
// logits on a batch to 1e-5 (f32). Skipped only where torch is missing.

const python = await torchPython();
const skip = python ? false : ((await torchSkipReason()) ?? torchMissing);
const root = mkdtempSync(path.join(tmpdir(), 'moec-export-'));
after(() => rmSync(root, { recursive: true, force: true }));
const text = 'the cat sat on the mat.\n\nthe dog sat on the log.\n\na bird sat on a wire.\n\n'.repeat(4);

function script(name: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const f = path.join(dir, 'test', 'runtime', 'export', name);
    if (existsSync(f)) return f;
    if (path.dirname(dir) === dir) throw new Error(`${name} not found`);
    dir = path.dirname(dir);
  }
}

/** Exports the fixture trial and compares PyTorch's logits with moec's on one batch. */
async function compare(name: string, moe: string, format: 'hf' | 'torch', labels?: number[], layers = 2): Promise<{ dir: string; worst: number }> {
  const fx = await fixtureTrial(path.join(root, name), tinyPipeline(moe, { layers }), text);
  try {
    const { batch: B, context: T, vocab: V } = fx.compiled.spec;
    const r = rng(3);
    const tokens = Uint32Array.from({ length: B * T }, () => Math.floor(r() * V));
    fx.model.forward(tokens, labels ? Uint32Array.from(labels) : undefined);
    const ours = await fx.model.ex.read('logits');
    const out = path.join(root, name, 'export');
    exportTrial(openTrained(fx.trial.id, fx.runs), { format, out, dtype: 'f32' });
    const tokFile = path.join(root, name, 'tokens.bin');
    writeFileSync(tokFile, tokens);
    const logitsFile = path.join(root, name, 'logits.bin');
    await promisify(execFile)(python!, [script('export_logits.py'), out, tokFile, String(B), String(T), logitsFile, ...(labels ?? []).map(String)]);
    const theirs = new Float32Array(readFileSync(logitsFile).buffer.slice(0));
    assert.equal(theirs.length, ours.length);
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!) / Math.max(1, Math.abs(theirs[i]!)));
    return { dir: out, worst };
  } finally {
    fx.model.destroy();
  }
}

test('a dense trial exports as a GPT-2 checkpoint whose logits equal moec\'s (GPT2LMHeadModel conventions)', { skip }, async () => {
  const { dir, worst } = await compare('dense', '', 'hf');
  assert.ok(worst <= 1e-5, `largest relative logit difference ${worst}`);
  const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'gpt2');
  assert.equal(cfg.n_inner, 48);
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  assert.deepEqual(st.tensors.get('transformer.h.0.attn.c_attn.weight')!.shape, [32, 96]); // Conv1D: [in, out]
  assert.ok(![...st.tensors.keys()].some((k) => k.includes('optimizer')), 'no optimiser state');
  assert.equal(st.metadata.moec_version, JSON.parse(readFileSync(script('../../../package.json'), 'utf8')).version);
  assert.equal(JSON.parse(st.metadata.moec_config!).model.width, 32);
});

test('a token-routed MoE (top 2, capacity with drops, a shared expert) exports as a PyTorch module with moec\'s logits', { skip }, async () => {
  const { worst } = await compare('token', '    experts 4\n    top 2\n    unit token\n    capacity 1.0\n    shared 1', 'torch');
  assert.ok(worst <= 1e-5, `largest relative logit difference ${worst}`);
});

test('a sequence-routed MoE (global scope, cosine router, sigmoid gates renormalised) exports with moec\'s logits', { skip }, async () => {
  const { worst } = await compare('sequence', '    experts 3\n    top 2\n    unit sequence\n    scope global\n    router cosine(dim 8)\n    gate sigmoid\n    normalize true\n    capacity dropless', 'hf');
  assert.ok(worst <= 1e-5, `largest relative logit difference ${worst}`);
});

test('a random-routed MoE exports with moec\'s evaluation-time draws', { skip }, async () => {
  const { worst } = await compare('random', '    experts 4\n    top 2\n    router random\n    capacity dropless', 'torch', undefined, 1);
  assert.ok(worst <= 1e-5, `largest relative logit difference ${worst}`);
});

test('a hash-routed MoE (top 2, global scope) exports with moec\'s fixed token-id experts', { skip }, async () => {
  const { worst } = await compare('hash', '    experts 4\n    top 2\n    scope global\n    router hash\n    capacity dropless', 'torch');
  assert.ok(worst <= 1e-5, `largest relative logit difference ${worst}`);
});

test('f16 export halves the weights; Soft MoE is refused with the reason', async () => {
  const fx = await fixtureTrial(path.join(root, 'soft'), tinyPipeline('    experts 2\n    dispatch soft'), text);
  fx.model.destroy();
  assert.throws(() => exportTrial(openTrained(fx.trial.id, fx.runs), { format: 'torch', out: path.join(root, 'soft', 'out'), dtype: 'f32' }), (e: unknown) => e instanceof UserError && /Soft MoE/.test(e.message));
  const d = await fixtureTrial(path.join(root, 'half'), tinyPipeline(''), text);
  d.model.destroy();
  const out = path.join(root, 'half', 'out');
  exportTrial(openTrained(d.trial.id, d.runs), { format: 'hf', out, dtype: 'f16' });
  const st = readSafetensors(path.join(out, 'model.safetensors'));
  assert.equal(st.tensors.get('transformer.wte.weight')!.dtype, 'F16');
  const f32 = readSafetensors(path.join(d.sweepDir, d.trial.id, 'checkpoints', 'step-3.safetensors')).tensors.get('wte.weight')!.data;
  const f16 = st.tensors.get('transformer.wte.weight')!.data;
  for (let i = 0; i < f32.length; i += 97) assert.ok(Math.abs(f32[i]! - f16[i]!) <= 1e-3 * Math.max(1e-2, Math.abs(f32[i]!)), `${f32[i]} vs ${f16[i]}`);
});
