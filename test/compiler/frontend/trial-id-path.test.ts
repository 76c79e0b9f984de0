import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadPipeline } from '../../../compiler/frontend/index.js';

// A trial's id is the hash of its config, and a file source's path is part of it: however the .moe
// file is named on the command line, the same file gives the same ids (and --resume finds them).

const root = mkdtempSync(path.join(tmpdir(), 'moec-id-path-'));
after(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(path.join(root, 'study', 'corpus', 'a'), { recursive: true });
writeFileSync(path.join(root, 'study', 'corpus', 'a', 'x.txt'), 'hello');
const file = path.join(root, 'study', 'sweep.moe');
writeFileSync(file, `data d {
  source folder "corpus"
  tokenizer bytes
  context 16
}
model m { layers 1; width 8; heads 1 }
train { data d; steps 1; batch 1 }
sweep { train.lr in [1e-3, 2e-3] }
`);

const ids = (f: string) => {
  const r = loadPipeline(f);
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  return { ids: r.trials.map((t) => t.id), path: r.trials[0]!.config.data['d']!.source.path };
};

test('the same .moe file named absolutely, relatively and through .. gives the same trial ids', () => {
  const abs = ids(file);
  assert.equal(abs.path, path.join(root, 'study', 'corpus'));
  assert.deepEqual(ids(path.relative(process.cwd(), file)), abs);
  assert.deepEqual(ids(path.join(root, 'study', '..', 'study', 'sweep.moe')), abs);
  const cwd = process.cwd();
  try {
    process.chdir(root);
    assert.deepEqual(ids('study/sweep.moe'), abs);
    process.chdir(path.join(root, 'study'));
    assert.deepEqual(ids('sweep.moe'), abs);
  } finally {
    process.chdir(cwd);
  }
});
