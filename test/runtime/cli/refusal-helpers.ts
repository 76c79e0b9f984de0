import assert from 'node:assert/strict';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { CompileError, compileTrial } from '../../../compiler/lower/compile.js';
import type { RuleCode } from '../../../compiler/rules/index.js';
import { checkCommand } from '../../../runtime/cli/commands/check.js';
import { capture, withTempFile } from '../../compiler/frontend/helpers.js';

/** Row:column of `value` on the first (or `last`) line whose trimmed text is `line`, after that line's key. */
export function where(text: string, line: string, value: string, which: 'first' | 'last' = 'first'): string {
  const lines = text.split('\n').map((l) => l.trim());
  const row = which === 'first' ? lines.indexOf(line) : lines.lastIndexOf(line);
  assert.ok(row >= 0, `no line '${line}'`);
  const raw = text.split('\n')[row]!;
  const key = line.split(' ')[0]!;
  return `${row + 1}:${raw.indexOf(value, raw.indexOf(key) + (which === 'first' ? 1 : key.length)) + 1}`;
}

/**
 * The front end accepts `text`, the lowering refuses it (`says`, rule `code`), and `moec check --preset small`
 * reports that refusal at `line`'s `value` (file:line:col) with `hint`, exit 1, no stack trace; its
 * --json form carries the rule's code at the same place.
 */
export async function assertCheckRefuses(fileName: string, text: string, c: { line: string; value: string; says: RegExp; hint: string; code: RuleCode; which?: 'first' | 'last' }): Promise<void> {
  await withTempFile(fileName, text, async (file) => {
    const r = loadPipeline(file, { preset: undefined });
    assert.ok(r.ok, `the front end's own checks pass: ${JSON.stringify(r.diagnostics.map((d) => d.message))}`);
    assert.throws(() => compileTrial(r.trials[0]!.config), c.says, 'the lowering refuses it');
    assert.throws(() => compileTrial(r.trials[0]!.config), (e: unknown) => e instanceof CompileError && e.code === c.code, `the lowering refuses it by rule ${c.code}`);
    const out = await capture(() => checkCommand.run([file, '--preset', 'small']));
    assert.equal(out.code, 1, out.err);
    const name = fileName.replace(/\./g, '\\.');
    assert.match(out.err, new RegExp(`${name}:${where(text, c.line, c.value, c.which)} error: the lowering refuses this: `), out.err);
    assert.match(out.err, c.says);
    assert.ok(out.err.includes(c.hint), `the hint says '${c.hint}': ${out.err}`);
    assert.doesNotMatch(out.err, /\n\s+at /, 'no stack trace');
    const json = await capture(() => checkCommand.run([file, '--preset', 'small', '--json']));
    assert.equal(json.code, 1);
    const ds = (JSON.parse(json.out) as { diagnostics: { line: number; col: number; code: string | null; severity: string }[] }).diagnostics;
    const at = where(text, c.line, c.value, c.which);
    assert.deepEqual(ds.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.col} ${d.code}`), [`${at} ${c.code}`], json.out);
  });
}
