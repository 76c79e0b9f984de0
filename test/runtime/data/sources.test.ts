import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BUILTIN } from '../../../runtime/data/sources/index.js';
import { PINS } from '../../../runtime/data/packages.js';
import { tempCache } from './helpers.js';

const page = (lang: string, paras: string[]) =>
  `<!DOCTYPE html><html lang="${lang}"><head><title>t</title></head><body><aside>Contents</aside><div id="DisplayArea">${paras.map((p) => `<p>${p}</p>`).join('')}</div><footer>Please support us!</footer></body></html>`;

function fakeHelp(root: string, dirName: string, pages: Record<string, string[]>): string {
  for (const [rel, paras] of Object.entries(pages)) {
    const file = join(root, 'usr/share/libreoffice/help', dirName, 'text', rel);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, page(dirName, paras));
  }
  return root;
}

test('libreoffice-help: one document per page, untranslated lines dropped, labels language and module', async () => {
  const t = tempCache();
  try {
    const en = fakeHelp(join(t.dir, 'en'), 'en-US', { 'scalc/01/sum.html': ['SUM', 'Adds all numbers.', '=SUM(A1:A3)'], 'swriter/main.html': ['Writer', 'Untranslated only.'] });
    const de = fakeHelp(join(t.dir, 'de'), 'de', { 'scalc/01/sum.html': ['SUMME', 'Addiert alle Zahlen.', '=SUM(A1:A3)'], 'swriter/main.html': ['Writer', 'Untranslated only.'] });
    const [part] = BUILTIN['libreoffice-help']!.parts(['de']);
    assert.deepEqual(part!.packages, ['libreoffice-help-en-us', 'libreoffice-help-de']);
    const docs = await part!.build([en, de], ['sha-en-test', 'sha-de-test']);
    assert.deepEqual(docs, [{ id: 'de/scalc/01/sum.html', splitKey: 'scalc/01/sum.html', text: 'SUMME\nAddiert alle Zahlen.', labels: { language: 'de', module: 'scalc', source: 'libreoffice-help' } }]);
    const [enPart] = BUILTIN['libreoffice-help']!.parts(['en']);
    const enDocs = await enPart!.build([en], ['sha-en-test']);
    assert.deepEqual(enDocs.map((d) => d.text), ['SUM\nAdds all numbers.\n=SUM(A1:A3)', 'Writer\nUntranslated only.']);
  } finally { t.done(); }
});

test('fortunes: English topics without languages, else one part per language', () => {
  const f = BUILTIN.fortunes!;
  assert.deepEqual(f.parts([]).map((p) => [p.part, p.packages]), [['en', ['fortunes-min', 'fortunes']]]);
  assert.deepEqual(f.parts(['de', 'ru']).map((p) => p.packages), [['fortunes-de'], ['fortunes-ru']]);
});

test('every package a built-in source needs is pinned with a version and a SHA-256', () => {
  for (const src of Object.values(BUILTIN)) {
    for (const part of src.parts([...src.languages])) {
      for (const name of part.packages) {
        const p = PINS[name];
        assert.ok(p, `${src.name} needs ${name}, which has no pin`);
        assert.match(p.sha256, /^[0-9a-f]{64}$/);
        assert.ok(p.version);
      }
    }
  }
});
