import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { RuleCode } from '../../../compiler/rules/index.js';
import { checkCommand } from '../../../runtime/cli/commands/check.js';
import { capture, pipelinesDir, withTempFile } from '../../compiler/frontend/helpers.js';
import { assertCheckRefuses, where } from './refusal-helpers.js';

// Every refusal the lowering makes is reported by `moec check`, at the setting's line and column,
// before anything runs: a file that checks clean is one `moec run` compiles.

const quickstart = readFileSync(path.join(pipelinesDir, 'quickstart.moe'), 'utf8');
/** The quickstart with lines set in its moe and train blocks (replacing the same keys), and its sweep replaced. */
function variant(moe: string[], train: string[] = [], sweep = '  model.moe.top in [1, 2]'): string {
  const set = (text: string, block: string, indent: string, lines: string[]) => {
    const keys = new Set(lines.map((l) => l.split(' ')[0]));
    return text.replace(new RegExp(`(\\n${block} \\{[^}]*)\\}`), (_m, body: string) =>
      `${body.split('\n').filter((l) => !keys.has(l.trim().split(' ')[0])).join('\n')}${lines.map((l) => `${indent}${l}\n`).join('')}${indent.slice(2)}}`);
  };
  return set(set(quickstart, '  moe', '    ', moe), 'train', '  ', train).replace('  model.moe.top in [1, 2]', sweep);
}

const inFile = <T>(text: string, fn: (file: string) => T): T => withTempFile('check.moe', text, fn);

const cases: { what: string; code: RuleCode; moe?: string[]; train?: string[]; sweep?: string; line: string; value: string; says: RegExp; hint: string }[] = [
  { what: 'noise on a random router', code: 'lower.noise-without-logits', moe: ['router random', 'noise 0.1'], line: 'noise 0.1', value: '0.1', says: /router noise needs router logits; a random router has none/, hint: 'use noise 0' },
  { what: 'z-loss on a random router (it would be ignored)', code: 'lower.zloss-without-logits', moe: ['router random', 'zloss 0.01'], line: 'zloss 0.01', value: '0.01', says: /z-loss penalises router logits; a random router has none/, hint: 'use zloss 0 with router random' },
  { what: 'z-loss on a label router', code: 'lower.zloss-without-logits', moe: ['router label(genre)', 'zloss 0.01'], line: 'zloss 0.01', value: '0.01', says: /a label router has none/, hint: 'use zloss 0 with router label' },
  { what: 'a sampled second expert on a random router', code: 'lower.sampled-without-scores', moe: ['router random', 'second sampled'], sweep: '  model.moe.experts in [4]', line: 'second sampled', value: 'sampled', says: /sampled second expert needs router scores/, hint: 'use second top' },
  { what: 'shared experts beside linear experts', code: 'lower.shared-beside-non-gelu', moe: ['shared 1', 'expert linear'], line: 'shared 1', value: '1', says: /shared experts are GELU MLPs/, hint: 'use shared 0' },
  { what: 'hash routing of whole sequences', code: 'lower.hash-sequence', moe: ['router hash', 'unit sequence'], line: 'unit sequence', value: 'sequence', says: /hash routing maps each token id/, hint: 'use unit token with router hash' },
  { what: 'Soft MoE with router noise', code: 'lower.soft-noise', moe: ['dispatch soft', 'noise 0.1'], sweep: '  model.moe.experts in [4]', line: 'noise 0.1', value: '0.1', says: /Soft MoE \(dispatch soft\) has no router logits/, hint: 'use noise 0' },
  { what: 'Soft MoE with a global router', code: 'lower.soft-scope', moe: ['dispatch soft', 'scope global'], sweep: '  model.moe.experts in [4]', line: 'scope global', value: 'global', says: /scope global is not lowered for it/, hint: 'use scope layer' },
  { what: 'auxiliary-loss-free balancing on a random router', code: 'lower.bias-without-scores', moe: ['router random', 'balance 0', 'bias-rate 0.001'], line: 'bias-rate 0.001', value: '0.001', says: /auxiliary-loss-free balancing biases router scores; a random router has none/, hint: 'or bias-rate 0' },
  { what: 'auxiliary-loss-free balancing with a sampled second expert', code: 'lower.bias-with-sampled', moe: ['second sampled', 'bias-rate 0.001'], sweep: '  model.moe.experts in [4]', line: 'bias-rate 0.001', value: '0.001', says: /a sampled second expert is not a top-k choice/, hint: 'use second top with bias-rate' },
  { what: 'the sequence-wise balance loss with sequence routing', code: 'lower.seq-balance-with-sequence-unit', moe: ['unit sequence', 'balance-over sequence'], line: 'balance-over sequence', value: 'sequence', says: /with unit sequence a sequence is one routing decision/, hint: 'use balance-over batch with unit sequence' },
  { what: 'the sequence-wise balance loss with expert choice', code: 'lower.seq-balance-with-expert-choice', moe: ['choice expert', 'capacity 1', 'balance 0', 'balance-over sequence'], sweep: '  model.moe.experts in [4]', line: 'balance-over sequence', value: 'sequence', says: /expert choice balances the load by construction and takes no balance loss/, hint: 'use balance-over batch (and balance 0) with choice expert' },
  { what: 'the sequence-wise balance loss with Soft MoE', code: 'lower.seq-balance-with-soft', moe: ['dispatch soft', 'balance-over sequence'], sweep: '  model.moe.experts in [4]', line: 'balance-over sequence', value: 'sequence', says: /dispatch soft assigns none/, hint: 'use balance-over batch with dispatch soft' },
  { what: 'precision f16 with MoE layers', code: 'lower.f16-moe', train: ['precision f16'], line: 'precision f16', value: 'f16', says: /precision f16 is lowered for dense models only/, hint: 'use precision f32 for MoE models' },
  { what: 'a batch whose kernels need more than 65535 workgroups in one dimension', code: 'lower.grid-too-large', train: ['batch 1100'], line: 'batch 1100', value: '1100', says: /needs more than 65535 workgroups/, hint: 'set train.batch 550 and train.accumulate 2' },
];

for (const c of cases) {
  test(`moec check reports the lowering's refusal at its setting: ${c.what}`, () => assertCheckRefuses('check.moe', variant(c.moe ?? [], c.train ?? [], c.sweep), c));
}

test('moec check names how many trials of a sweep a refusal concerns, and the first of them, once', async () => {
  const text = variant(['router random', 'noise 0'], [], '  model.moe.noise in [0, 0.1, 0.2]');
  await inFile(text, async (file) => {
    const out = await capture(() => checkCommand.run([file, '--preset', 'small']));
    assert.equal(out.code, 1);
    assert.equal(out.err.match(/the lowering refuses this/g)?.length, 1, `one diagnostic for the trials it concerns: ${out.err}`);
    assert.match(out.err, /\(2 of 3 trials, first [0-9a-f]+ \(noise=0\.1\)\)/);
  });
});

test('moec check passes a file whose every trial the lowering takes, and its summary counts them', async () => {
  const out = await capture(() => checkCommand.run([path.join(pipelinesDir, 'quickstart.moe')]));
  assert.equal(out.code, 0, out.err);
  assert.doesNotMatch(out.err, /lowering refuses/);
});

test('moec check --json prints the diagnostics as one JSON object, each with its rule code', async () => {
  const clean = await capture(() => checkCommand.run([path.join(pipelinesDir, 'quickstart.moe'), '--json']));
  assert.equal(clean.code, 0, clean.err);
  assert.deepEqual(JSON.parse(clean.out), { ok: true, errors: 0, warnings: 0, trials: 2, diagnostics: [] });
  const text = variant(['top 5'], [], '  train.seed in [1, 2]');
  await inFile(text, async (file) => {
    const out = await capture(() => checkCommand.run([file, '--preset', 'small', '--json']));
    assert.equal(out.code, 1);
    assert.equal(out.err, '', 'nothing on stderr');
    const r = JSON.parse(out.out) as { ok: boolean; diagnostics: { code: string; line: number; col: number; message: string }[] };
    assert.equal(r.ok, false);
    assert.deepEqual(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`), [`${where(text, 'top 5', '5')} moe.top-over-experts`]);
  });
});

test('moec check warns, not refuses, where moec run splits the micro-batch: a grid past 65535 workgroups with nothing computed per micro-batch', async () => {
  const text = variant(['balance 0'], ['batch 1100']);
  await inFile(text, async (file) => {
    const out = await capture(() => checkCommand.run([file, '--preset', 'small']));
    assert.equal(out.code, 0, out.err);
    assert.match(out.err, new RegExp(`check\\.moe:${where(text, 'batch 1100', '1100')} warning: batch 1100 runs as \\d+ micro-batches of \\d+`), out.err);
    assert.doesNotMatch(out.err, /lowering refuses/);
  });
});
