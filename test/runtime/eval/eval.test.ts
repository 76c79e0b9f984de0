import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UserError } from '../../../grammar/user-error.js';
import { main } from '../../../runtime/cli/main.js';
import { prepareDataset, type PreparedText } from '../../../runtime/data/index.js';
import { resolveEvalData } from '../../../runtime/eval/data-spec.js';
import { evaluateTrial } from '../../../runtime/eval/evaluate.js';
import { compileFor, flatParams, openTrained } from '../../../runtime/eval/trained.js';
import { RunStore, type EvalMetric } from '../../../runtime/store/run-store.js';
import { readSafetensors } from '../../../runtime/store/safetensors.js';
import { initParams } from '../../../runtime/train/init.js';
import { checkTokenIds, GpuModel } from '../../../runtime/train/model.js';
import { testGpu } from '../../helpers/gpu.js';
import { trainPattern } from '../sample/trained-pattern.js';

// `moec eval` on a trial trained for real: scored on its own validation split and on a file of the
// same documents it gives exactly what training reported; a sweep is evaluated in one command and
// its files written beside the report; data of another tokenizer and out-of-range ids are refused.

const root = mkdtempSync(path.join(tmpdir(), 'moec-eval-'));
after(() => rmSync(root, { recursive: true, force: true }));
const run = await trainPattern(root, { steps: 30, extra: ['--save-init'] });
const store = RunStore.open(run.sweepDir);
const trialId = store.index.trials[0]!.id;
const finalEval = store.trial(trialId).readMetrics().filter((m): m is EvalMetric => m.kind === 'eval').at(-1)!;

async function quiet<T>(f: () => Promise<T>): Promise<{ value: T; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const err = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  process.stderr.write = ((s: string) => { lines.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    return { value: await f(), out: lines.join('\n') };
  } finally {
    console.log = log;
    process.stderr.write = err;
  }
}

test('evaluated on its own validation split, a trial scores what training reported', async () => {
  const t = openTrained(trialId, run.runs);
  const spec = resolveEvalData('pattern.valid', t.record.config);
  const data = (await prepareDataset(spec.ds)) as PreparedText;
  const r = await evaluateTrial(await testGpu(), t, data, spec.split, spec.label);
  assert.equal(r.loss, finalEval.valid_loss);
  assert.equal(r.tokens, finalEval['pattern.valid.tokens']);
});

test('a held-out text file holding exactly the validation documents scores the same (known answer)', async () => {
  const t = openTrained(trialId, run.runs);
  const own = (await prepareDataset(resolveEvalData('pattern.valid', t.record.config).ds)) as PreparedText;
  // The validation documents, decoded, one paragraph each: the same tokens in the same order.
  const docs: string[] = [];
  for (let d = 0; d + 1 < own.valid.docOffsets.length; d++) docs.push(Buffer.from(own.valid.tokens.subarray(own.valid.docOffsets[d]!, own.valid.docOffsets[d + 1]! - 1)).toString('latin1'));
  const file = path.join(root, 'held-out.txt');
  writeFileSync(file, docs.join('\n\n') + '\n');
  const { out } = await quiet(() => main(['eval', run.sweepDir, '--data', file, '--name', 'held']));
  assert.ok(existsSync(path.join(run.sweepDir, 'eval', 'held.json')), out);
  const json = JSON.parse(readFileSync(path.join(run.sweepDir, 'eval', 'held.json'), 'utf8'));
  assert.equal(json.trials.length, 1, out);
  assert.ok(Math.abs(json.trials[0].loss - finalEval.valid_loss) <= 1e-6 * finalEval.valid_loss, `${json.trials[0].loss} vs ${finalEval.valid_loss}`);
  for (const ext of ['csv', 'md']) assert.ok(existsSync(path.join(run.sweepDir, 'eval', `held.${ext}`)));
  assert.match(readFileSync(path.join(run.sweepDir, 'eval', 'held.csv'), 'utf8'), new RegExp(`^trial,name,.*\\n${trialId},`));
});

test('expert assignment by label: a folder of files labels by folder, every window is counted', async () => {
  const dir = path.join(root, 'by-folder');
  for (const [lab, body] of [['abc', 'abcabcabcabcabc'], ['xyz', 'hijhijhijhijhij']]) {
    mkdirSync(path.join(dir, lab), { recursive: true });
    writeFileSync(path.join(dir, lab, 'a.txt'), `${body}\n\n${body}${body}\n`);
  }
  const { out } = await quiet(() => main(['eval', trialId, '--runs', run.runs, '--data', dir, '--by', 'folder', '--name', 'folders']));
  assert.ok(existsSync(path.join(run.sweepDir, 'eval', 'folders.json')), out);
  const json = JSON.parse(readFileSync(path.join(run.sweepDir, 'eval', 'folders.json'), 'utf8'));
  const layers = json.trials[0].experts as { layer: number; counts: Record<string, number[]> }[];
  assert.deepEqual(layers.map((l) => l.layer), [0], out);
  assert.deepEqual(Object.keys(layers[0]!.counts).sort(), ['abc', 'xyz']);
  assert.match(readFileSync(path.join(run.sweepDir, 'eval', 'folders.md'), 'utf8'), /\| abc \| [\d.]+ \| [\d.]+ \|/);
});

test('data cut with another tokenizer is refused, in moec eval and before training in moec run', async () => {
  const other = path.join(root, 'other.moe');
  writeFileSync(other, readFileSync(run.file, 'utf8').replace('tokenizer bytes', 'tokenizer gpt2'));
  const t = openTrained(trialId, run.runs);
  const spec = resolveEvalData(`${other}:pattern.valid`, t.record.config);
  const data = (await prepareDataset(spec.ds)) as PreparedText;
  await assert.rejects(evaluateTrial(await testGpu(), t, data, spec.split, spec.label), (e: unknown) => e instanceof UserError && /tokenised with gpt2 .* bytes tokens/.test(e.message) && /tokenizer bytes/.test(e.hint ?? ''));
  // A pipeline that evaluates a bytes model on GPT-2 data fails with the reason, and trains nothing.
  const mixed = path.join(root, 'mixed.moe');
  writeFileSync(mixed, readFileSync(run.file, 'utf8').replace('evaluate {', 'data gpt {\n  source text "pattern.txt"\n  tokenizer gpt2\n  context 16\n  valid 20%\n}\nevaluate {\n  perplexity gpt.valid').replace('model tiny {', 'model tiny {').replace(/steps \d+/, 'steps 6'));
  const { value: code, out } = await quiet(() => main(['run', mixed, '--out', path.join(root, 'mixed-runs')]));
  assert.equal(code, 1, out);
  assert.match(out, /data 'gpt' is tokenised with gpt2/);
});

test('token ids outside the vocabulary are refused on the host before upload, not clamped', async () => {
  assert.throws(() => checkTokenIds(Uint32Array.of(1, 256), Uint32Array.of(2, 3), 256), (e: unknown) => e instanceof UserError && /token id 256 at position 1/.test(e.message));
  assert.throws(() => checkTokenIds(Uint32Array.of(1, 2), Uint32Array.of(300, 3), 256), (e: unknown) => e instanceof UserError && /target id 300/.test(e.message));
  checkTokenIds(Uint32Array.of(0, 255), Uint32Array.of(255, 0xffffffff), 256);
  const t = openTrained(trialId, run.runs);
  const model = await GpuModel.create(await testGpu(), compileFor(t.record.config, 1, 'oor'));
  try {
    const tokens = new Uint32Array(16).fill(97);
    tokens[5] = 50256; // a GPT-2 end-of-text id into a byte model
    assert.throws(() => model.forward(tokens), (e: unknown) => e instanceof UserError && /token id 50256 at position 5 .* \(0\.\.255\)/.test(e.message));
  } finally {
    model.destroy();
  }
});

test('--save-init keeps the step-0 weights (the seed\'s initialisation), which eval reads by path', async () => {
  const ts = store.trial(trialId);
  assert.ok(existsSync(ts.initialPath));
  const t = openTrained(ts.initialPath);
  assert.equal(t.step, 0);
  const c = compileFor(t.record.config, 8, 'init');
  assert.deepEqual(flatParams(c, readSafetensors(ts.initialPath).tensors, ts.initialPath), initParams(c.graph, c.layout, t.record.seed));
  // Still there after the training's checkpoints were pruned, and scored worse than the trained weights.
  const spec = resolveEvalData('pattern.valid', t.record.config);
  const r = await evaluateTrial(await testGpu(), t, (await prepareDataset(spec.ds)) as PreparedText, spec.split, spec.label);
  assert.ok(r.loss > finalEval.valid_loss + 0.1, `initial ${r.loss} vs trained ${finalEval.valid_loss}`);
});

