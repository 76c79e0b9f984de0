import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinCorpora, corpusNames, sourceKinds } from '../../../compiler/frontend/corpora.js';
import { loadPipeline } from '../../../compiler/frontend/index.js';
import { dataSchema } from '../../../compiler/frontend/schema.js';
import { UserError } from '../../../grammar/user-error.js';
import { BUILTIN } from '../../../runtime/data/sources/index.js';
import { resolveEvalData } from '../../../runtime/eval/data-spec.js';

// The one list of corpora: the runtime builds exactly those the compiler accepts, with the same
// languages; resolution and `moec eval --data` give the same labels; bad languages are refused
// in both places with the languages that exist.

const moe = (source: string) => `data d {
  source ${source}
  tokenizer bytes
  context 16
}
model m { layers 1; width 8; heads 1 }
train { data d; steps 1; batch 1 }
`;
const load = (source: string) => loadPipeline('main.moe', { readFile: (f) => (f === 'main.moe' ? moe(source) : undefined) });

test('the runtime builds every corpus the compiler accepts, under the same name and with the same languages', () => {
  assert.deepEqual(Object.keys(BUILTIN), corpusNames);
  for (const n of corpusNames) {
    assert.equal(BUILTIN[n]!.name, n);
    assert.deepEqual([...BUILTIN[n]!.languages], [...builtinCorpora[n].languages], n);
  }
  const kinds = (dataSchema.properties!['source']!.properties!['kind']!.enum ?? []) as string[];
  assert.deepEqual(kinds, [...sourceKinds]);
  for (const n of corpusNames) assert.match(dataSchema.properties!['source']!.description!, new RegExp(`\`${n}\``));
});

test('a data set and `moec eval --data` of the same corpus carry the same labels', () => {
  const own = load('brown');
  assert.equal(own.diagnostics.filter((d) => d.severity === 'error').length, 0, JSON.stringify(own.diagnostics));
  const c = own.trials![0]!.config;
  for (const [source, spec] of [['brown', 'brown'], ['fortunes', 'fortunes'], ['fortunes [de, it]', 'fortunes[de,it]'], ['udhr [en]', 'udhr[en]'], ['moby-dick', 'moby-dick'], ['sotu', 'sotu']] as const) {
    const r = load(source);
    assert.equal(r.diagnostics.filter((d) => d.severity === 'error').length, 0, source);
    const fromMoe = r.trials![0]!.config.data['d']!.labels;
    assert.deepEqual(resolveEvalData(spec, c).ds.labels, fromMoe, spec);
  }
  assert.deepEqual(load('fortunes').trials![0]!.config.data['d']!.labels, ['topic']);
  assert.deepEqual(load('fortunes [de]').trials![0]!.config.data['d']!.labels, ['language']);
});

test('a language a corpus does not offer is refused in the .moe file and in --data, naming those it does', () => {
  const r = load('udhr [en, xx]');
  const e = r.diagnostics.find((d) => d.severity === 'error');
  assert.ok(e, 'no error');
  assert.match(e.message, /corpus 'udhr' has no language 'xx'/);
  assert.equal(e.span?.line, 2);
  const none = load('brown [en]').diagnostics.find((d) => d.severity === 'error');
  assert.match(none!.message, /corpus 'brown' has no languages to choose from/);

  const c = load('brown').trials![0]!.config;
  assert.throws(() => resolveEvalData('fortunes[de,xx]', c), (err: unknown) => err instanceof UserError && /no language 'xx'/.test(err.message) && err.where === '--data' && /en, de, it, es, ru/.test(err.hint ?? ''));
  assert.throws(() => resolveEvalData('sotu[en]', c), (err: unknown) => err instanceof UserError && /has no languages to choose from/.test(err.message));
});
