import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { RuleCode } from '../../../compiler/rules/index.js';
import { checkCommand } from '../../../runtime/cli/commands/check.js';
import { capture, pipelinesDir, withTempFile } from '../../compiler/frontend/helpers.js';
import { assertCheckRefuses, where } from './refusal-helpers.js';

// `moec check` on expert choice: it warns that the choice sees later tokens (not causal), at the
// `choice` key, and reports each setting expert choice cannot take at its line and column.

const quickstart = readFileSync(path.join(pipelinesDir, 'quickstart.moe'), 'utf8');
/** The quickstart with expert choice (capacity 1, balance 0) and `extra` lines in its moe block. */
const variant = (choice: string, extra: string[] = []) =>
  quickstart.replace('    capacity dropless\n    balance 0.01\n', ['    capacity 1', '    balance 0', `    choice ${choice}`, ...extra.map((l) => `    ${l}`), ''].join('\n'));
const inFile = <T>(text: string, fn: (file: string) => T): T => withTempFile('choice.moe', text, fn);

for (const choice of ['expert', 'expert(sequence)']) {
  test(`moec check warns that choice ${choice} sees later tokens, at the choice key, and passes`, async () => {
    const text = variant(choice);
    await inFile(text, async (file) => {
      const out = await capture(() => checkCommand.run([file, '--preset', 'small']));
      assert.equal(out.code, 0, out.err);
      assert.match(out.err, new RegExp(`choice\\.moe:${where(text, `choice ${choice}`, 'expert', 'last')} warning: expert choice is not causal`), out.err);
      assert.match(out.err, /sees later tokens/);
      assert.match(out.err, choice === 'expert' ? /all tokens of the micro-batch/ : /all tokens of its sequence/);
    });
  });
}

test('moec check gives no expert-choice warning for token choice', async () => {
  await inFile(variant('token'), async (file) => {
    const out = await capture(() => checkCommand.run([file, '--preset', 'small']));
    assert.equal(out.code, 0, out.err);
    assert.doesNotMatch(out.err, /expert choice/);
  });
});

const refusals: { what: string; code: RuleCode; set: string; line: string; value: string; says: RegExp; hint: string }[] = [
  { what: 'a balance loss', code: 'lower.expert-choice-balance', set: 'balance 0.01', line: 'balance 0.01', value: '0.01', says: /balances the load by construction/, hint: 'use balance 0 with choice expert' },
  { what: 'a hash router', code: 'lower.expert-choice-router', set: 'router hash', line: 'router hash', value: 'hash', says: /ranks tokens by router score; a hash router has none/, hint: 'use choice token' },
  { what: 'dropless', code: 'lower.expert-choice-dropless', set: 'capacity dropless', line: 'capacity dropless', value: 'dropless', says: /dropless gives it no number to take/, hint: 'use a capacity factor' },
  { what: 'sequence routing', code: 'lower.expert-choice-unit', set: 'unit sequence', line: 'unit sequence', value: 'sequence', says: /no token score to rank/, hint: 'use unit token with choice expert' },
  { what: 'renormalised gates', code: 'lower.expert-choice-normalize', set: 'normalize true', line: 'normalize true', value: 'true', says: /not renormalised/, hint: 'use normalize false' },
  { what: 'topk-softmax', code: 'lower.expert-choice-gate', set: 'gate topk-softmax', line: 'gate topk-softmax', value: 'topk-softmax', says: /no fixed k/, hint: 'use gate softmax-topk' },
];

for (const c of refusals) {
  test(`moec check reports expert choice's refusal at its setting: ${c.what}`, async () => {
    const key = c.set.split(' ')[0]!;
    // The setting replaces the same key of the block (router/unit/balance/capacity are written there).
    const base = variant('expert');
    const text = base.includes(`    ${key} `) ? base.replace(new RegExp(`    ${key} .*\\n`), `    ${c.set}\n`) : base.replace('    choice expert\n', `    choice expert\n    ${c.set}\n`);
    await assertCheckRefuses('choice.moe', text, { ...c, which: 'last' });
  });
}
