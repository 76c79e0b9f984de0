import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { generateLanguageDoc } from '../../../compiler/frontend/docs.js';
import { blockKeys, modelSchema } from '../../../compiler/frontend/schema.js';
import { repoRoot } from './helpers.js';

test('docs/LANGUAGE.md is generated from the schema and up to date (regenerate: moec docs > docs/LANGUAGE.md)', () => {
  const doc = generateLanguageDoc();
  assert.equal(readFileSync(path.join(repoRoot, 'docs/LANGUAGE.md'), 'utf8'), doc);
  for (const k of blockKeys(modelSchema.properties!['moe']!)) assert.ok(doc.includes(`| \`${k}\` |`), k);
});
