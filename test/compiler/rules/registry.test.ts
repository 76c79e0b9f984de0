import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import type { TrialConfig } from '../../../compiler/frontend/types.js';
import { compiledRules, registry, type RuleCode, runRules } from '../../../compiler/rules/index.js';
import { loweringDiagnostics } from '../../../runtime/cli/commands/check.js';
import { pipelinesDir, withTempFile } from '../frontend/helpers.js';
import { where } from '../../runtime/cli/refusal-helpers.js';

// One case per rule of the validation registry: a file that breaks exactly that rule, and where
// `moec check` must report it (the line whose trimmed text is `line`, at `value`). A rule added to
// the registry without a case here fails the last test.

const quickstart = readFileSync(path.join(pipelinesDir, 'quickstart.moe'), 'utf8');
const clusters = readFileSync(path.join(pipelinesDir, 'clusters.moe'), 'utf8');

/**
 * `text` with `lines` set in the block whose header line is `header` (e.g. 'moe', 'train',
 * 'data brown', 'synthetic'): each replaces the line of the same key, or is added at the block's top.
 */
function setIn(text: string, header: string, lines: string[]): string {
  const all = text.split('\n');
  const at = all.findIndex((l) => l.trim() === `${header} {`);
  assert.ok(at >= 0, `no block '${header}'`);
  const indent = `${all[at]!.match(/^\s*/)![0]}  `;
  let depth = 0;
  let end = at;
  for (let i = at; i < all.length; i++) {
    depth += (all[i]!.match(/\{/g)?.length ?? 0) - (all[i]!.match(/\}/g)?.length ?? 0);
    if (depth === 0) { end = i; break; }
  }
  const keys = new Set(lines.map((l) => l.split(' ')[0]));
  const body = all.slice(at + 1, end).filter((l) => !(l.startsWith(indent) && !l.startsWith(`${indent} `) && keys.has(l.trim().split(' ')[0])));
  return [...all.slice(0, at + 1), ...lines.map((l) => `${indent}${l}`), ...body, ...all.slice(end)].join('\n');
}

interface Case {
  code: RuleCode;
  /** The base file (default: the quickstart, its sweep over seeds only) and the lines set per block. */
  base?: 'clusters';
  set?: Record<string, string[]>;
  replace?: [RegExp, string];
  line: string;
  value: string;
}

const c = (code: RuleCode, set: Record<string, string[]>, line: string, value: string, more: Partial<Case> = {}): Case => ({ code, set, line, value, ...more });
const moe = (...lines: string[]) => ({ moe: lines });
const train = (...lines: string[]) => ({ train: lines });
const soft = (line: string) => moe('dispatch soft', line);
const ec = (line: string) => moe('choice expert', 'capacity 1', 'balance 0', line);
const P = { base: 'clusters' } as const;

export const ruleCases: Case[] = [
  c('schema.enum', moe('gate softmx'), 'gate softmx', 'softmx'),
  c('schema.type', train('batch 8.5'), 'batch 8.5', '8.5'),
  c('schema.range', train('lr 0'), 'lr 0', '0'),
  c('schema.items', train('betas [0.9]'), 'betas [0.9]', '[0.9]'),
  c('model.heads-divide-width', { 'model tiny': ['heads 3'] }, 'heads 3', '3'),
  c('moe.top-over-experts', moe('top 5'), 'top 5', '5'),
  c('moe.every-over-layers', moe('every 3'), 'every 3', '3'),
  c('moe.prefix-needs-sequence', moe('prefix 4'), 'prefix 4', '4'),
  c('moe.prefix-over-context', moe('unit sequence(prefix 100)'), 'unit sequence(prefix 100)', '100'),
  c('moe.label-router-needs-label', moe('router label'), 'router label', 'label'),
  c('moe.label-not-in-data', moe('router label(lang)'), 'router label(lang)', 'lang'),
  c('moe.label-applies-only', moe('label genre'), 'label genre', 'genre'),
  c('moe.sampled-needs-top2', moe('top 1', 'second sampled'), 'second sampled', 'sampled'),
  c('moe.shared-with-soft', soft('shared 1'), 'shared 1', '1'),
  c('moe.expert-choice-not-causal', moe('choice expert', 'capacity 1', 'balance 0'), 'choice expert', 'expert'),
  c('moe.linear-expert-width', moe('expert linear', 'expert-width 32'), 'expert-width 32', '32'),
  c('moe.shared-width-without-shared', moe('shared-width 64'), 'shared-width 64', '64'),
  c('moe.soft-not-causal', moe('dispatch soft'), 'dispatch soft', 'soft'),
  c('data.language-unknown', { 'data brown': ['source libreoffice-help [en, zz]'], evaluate: ['experts brown.valid by language'] }, 'source libreoffice-help [en, zz]', 'zz'),
  c('data.language-twice', { 'data brown': ['source libreoffice-help [en, en]'], evaluate: ['experts brown.valid by language'] }, 'source libreoffice-help [en, en]', 'en]'),
  c('data.key-not-for-source', { 'data brown': ['text body'] }, 'text body', 'body'),
  c('data.range-reversed', { synthetic: ['feature [2, 0.5]'] }, 'feature [2, 0.5]', '[2', P),
  c('train.warmup-over-steps', train('warmup 500'), 'warmup 500', '500'),
  c('evaluate.every-over-steps', { evaluate: ['every 400'] }, 'every 400', '400'),
  c('evaluate.empty-valid-split', { 'data brown': ['valid 0'] }, 'perplexity brown.valid', 'brown'),
  c('train.balanced-needs-label', train('sample balanced'), 'sample balanced', 'balanced'),
  c('train.balance-label-not-in-data', train('sample balanced(lang)'), 'sample balanced(lang)', 'lang'),
  c('train.balanced-on-clusters', train('sample balanced(cluster)'), 'sample balanced(cluster)', 'balanced', P),
  c('train.balance-by-applies-only', train('balance-by genre'), 'balance-by genre', 'genre'),
  c('patch.transformer-key', { 'model patches': ['heads 2'] }, 'heads 2', '2', P),
  c('patch.routing-key', moe('scope global'), 'scope global', 'global', P),
  c('patch.key-outside-patch-model', train('full-batch true'), 'full-batch true', 'true'),
  c('train.router-rate-untrained', { ...moe('router random'), ...train('router-lr 0.01') }, 'router-lr 0.01', '0.01'),
  c('train.router-wd-under-adam', train('optimizer adam', 'router-wd 0.1'), 'router-wd 0.1', '0.1'),
  c('patch.router-wd', train('router-wd 0.1'), 'router-wd 0.1', '0.1', P),
  c('patch.batch-with-full-batch', train('full-batch true'), 'batch 64', '64', P),
  c('train.ngd-outside-patch-model', train('optimizer ngd'), 'optimizer ngd', 'ngd'),
  c('train.ngd-with-clip', train('optimizer ngd', 'clip 0.5'), 'clip 0.5', '0.5', P),
  c('patch.needs-moe', {}, 'model patches {', 'patches', { ...P, replace: [/\n {2}moe \{[^}]*\}/, ''] }),
  c('patch.top', moe('top 2'), 'top 2', '2', P),
  c('patch.router', moe('router random'), 'router random', 'random', P),
  c('patch.gate', moe('gate sigmoid'), 'gate sigmoid', 'sigmoid', P),
  c('patch.normalize', moe('normalize true'), 'normalize true', 'true', P),
  c('patch.accumulate', train('accumulate 2'), 'accumulate 2', '2', P),
  c('patch.precision', train('precision f16'), 'precision f16', 'f16', P),
  c('lower.f16-moe', train('precision f16'), 'precision f16', 'f16'),
  c('lower.noise-without-logits', moe('router random', 'noise 0.1'), 'noise 0.1', '0.1'),
  c('lower.sampled-without-scores', moe('router random', 'second sampled'), 'second sampled', 'sampled'),
  c('lower.zloss-without-logits', moe('router label(genre)', 'zloss 0.01'), 'zloss 0.01', '0.01'),
  c('lower.bias-with-soft', soft('bias-rate 0.001'), 'bias-rate 0.001', '0.001'),
  c('lower.bias-without-scores', moe('router random', 'balance 0', 'bias-rate 0.001'), 'bias-rate 0.001', '0.001'),
  c('lower.bias-with-sampled', moe('second sampled', 'bias-rate 0.001'), 'bias-rate 0.001', '0.001'),
  c('lower.seq-balance-with-soft', soft('balance-over sequence'), 'balance-over sequence', 'sequence'),
  c('lower.seq-balance-with-sequence-unit', moe('unit sequence', 'balance-over sequence'), 'balance-over sequence', 'sequence'),
  c('lower.seq-balance-with-expert-choice', ec('balance-over sequence'), 'balance-over sequence', 'sequence'),
  c('lower.soft-router', soft('router frozen'), 'router frozen', 'frozen'),
  c('lower.soft-unit', soft('unit sequence'), 'unit sequence', 'sequence'),
  c('lower.soft-scope', soft('scope global'), 'scope global', 'global'),
  c('lower.soft-noise', soft('noise 0.1'), 'noise 0.1', '0.1'),
  c('lower.soft-second', soft('second sampled'), 'second sampled', 'sampled'),
  c('lower.soft-zloss', soft('zloss 0.01'), 'zloss 0.01', '0.01'),
  c('lower.soft-gate', soft('gate sigmoid'), 'gate sigmoid', 'sigmoid'),
  c('lower.soft-normalize', soft('normalize true'), 'normalize true', 'true'),
  c('lower.expert-choice-router', ec('router hash'), 'router hash', 'hash'),
  c('lower.expert-choice-balance', moe('choice expert', 'capacity 1', 'balance 0.01'), 'balance 0.01', '0.01'),
  c('lower.expert-choice-unit', ec('unit sequence'), 'unit sequence', 'sequence'),
  c('lower.expert-choice-dropless', moe('choice expert', 'balance 0', 'capacity dropless'), 'capacity dropless', 'dropless'),
  c('lower.expert-choice-sampled', ec('second sampled'), 'second sampled', 'sampled'),
  c('lower.expert-choice-gate', ec('gate topk-softmax'), 'gate topk-softmax', 'topk-softmax'),
  c('lower.expert-choice-normalize', ec('normalize true'), 'normalize true', 'true'),
  c('lower.expert-choice-bias', ec('bias-rate 0.001'), 'bias-rate 0.001', '0.001'),
  c('lower.hash-sequence', moe('router hash', 'unit sequence'), 'unit sequence', 'sequence'),
  c('lower.shared-beside-non-gelu', moe('shared 1', 'expert linear'), 'shared 1', '1'),
  c('lower.grid-too-large', train('batch 1100'), 'batch 1100', '1100'),
];

/** The case's file: its base with the lines set and a sweep over seeds alone (no sweep of the keys it sets). */
function textOf(k: Case): string {
  let text = k.base === 'clusters' ? clusters : quickstart;
  text = text.replace(/\nsweep \{[\s\S]*?\n\}\n/, '\nsweep {\n  seeds 2\n}\n');
  for (const [block, lines] of Object.entries(k.set ?? {})) text = setIn(text, block, lines);
  if (k.replace) text = text.replace(k.replace[0], k.replace[1]);
  return text;
}

for (const k of ruleCases) {
  test(`rule ${k.code}: moec check reports exactly it, at ${k.line}`, () => withTempFile('rule.moe', textOf(k), (file) => {
    const text = textOf(k);
    const r = loadPipeline(file);
    const ds = r.ok ? [...r.diagnostics, ...loweringDiagnostics(r)] : r.diagnostics;
    const shown = ds.map((d) => `${d.span?.line}:${d.span?.col} ${d.severity}[${d.code ?? '-'}] ${d.message}`).join('\n');
    const at = where(text, k.line, k.value);
    assert.ok(ds.some((d) => d.code === k.code && `${d.span?.line}:${d.span?.col}` === at && path.resolve(d.span!.file) === path.resolve(file)), `${k.code} at ${at}:\n${shown}`);
    assert.deepEqual([...new Set(ds.filter((d) => d.severity === 'error').map((d) => d.code ?? '-'))].filter((x) => x !== k.code), [], `no other error:\n${shown}`);
  }));
}

// Rules no .moe text can break (resolution fills every required key and refuses unknown ones): a
// config built in code can, so each is tested on one, at the pointer it must report.
const codeCases: { code: RuleCode; edit: (c: TrialConfig) => void; ptr: string }[] = [
  { code: 'schema.invalid', edit: (c) => { delete (c.train as Partial<TrialConfig['train']>).lr; }, ptr: '/train' },
];

for (const k of codeCases) {
  test(`rule ${k.code}: a config built in code that breaks it is reported at ${k.ptr}`, () => {
    const config = structuredClone(loadPipeline(path.join(pipelinesDir, 'quickstart.moe')).trials[0]!.config);
    k.edit(config);
    const found = runRules(['schema', 'semantic', 'lowering'], { config, written: () => false });
    assert.deepEqual(found.map((f) => [f.code, f.ptr]), [[k.code, k.ptr]]);
  });
}

test('every rule of the registry has a case above', () => {
  const covered = new Set([...ruleCases, ...codeCases].map((k) => k.code));
  const codes = [...registry, ...compiledRules].map((r) => r.code);
  assert.deepEqual(codes.filter((x) => !covered.has(x)), [], 'rules without a case');
  assert.equal(new Set(codes).size, codes.length, 'each code is registered once');
});
