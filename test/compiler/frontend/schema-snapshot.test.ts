// The schema object is the contract with ajv, the resolver and the docs; refactoring how it is
// written (builders, the split into schema-*.ts) must not change it. The hash is of main's schema
// before the split (issue 17, part 6). A change made on purpose updates it, after reading the diff
// of `moec docs` and of the JSON below against the previous build:
//   node -e "import('./dist/compiler/frontend/schema.js').then(m=>process.stdout.write(JSON.stringify(m.pipelineSchema)))" | sha256sum
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { pipelineSchema } from '../../../compiler/frontend/schema.js';

const SCHEMA_SHA256 = 'bbbd59abca9f613ae7dd9c7c85f3585550b6c15765d4cb078291a694484e3c06';
const SCHEMA_CHARS = 29674;

test('the pipeline schema object is unchanged (JSON.stringify, key order included)', () => {
  const json = JSON.stringify(pipelineSchema);
  assert.equal(json.length, SCHEMA_CHARS, 'the schema JSON changed length; see the header of this test to update it on purpose');
  assert.equal(createHash('sha256').update(json).digest('hex'), SCHEMA_SHA256, 'the schema JSON changed; see the header of this test');
});
