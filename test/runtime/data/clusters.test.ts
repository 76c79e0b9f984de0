import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterBatcher, prepareClusters } from '../../../runtime/data/clusters.js';
import { dataSet } from './helpers.js';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>, ao = 0) => { let s = 0; for (let i = 0; i < b.length; i++) s += a[ao + i]! * b[i]!; return s; };

test('clusters: shapes, split, determinism, and the patch structure of Chen et al. 2022', () => {
  const ds = dataSet('clusters', { valid: 0.25 });
  ds.synthetic = { clusters: 3, patches: 5, dim: 12, noise: 0.05, feature: [1, 2], distractor: [0.5, 1], samples: 200 };
  const d = prepareClusters(ds, 7);
  assert.equal(d.train.n, 150);
  assert.equal(d.valid.n, 50);
  assert.equal(d.train.x.length, 150 * 5 * 12);
  assert.deepEqual(prepareClusters(ds, 7).valid.x, d.valid.x, 'same seed, same data');
  assert.notDeepEqual(prepareClusters(ds, 8).train.x, d.train.x, 'another seed, other data');
  const basis = [...d.features, ...d.centres];
  for (let i = 0; i < basis.length; i++) for (let j = 0; j < basis.length; j++) assert.ok(Math.abs(dot(basis[i]!, basis[j]!) - (i === j ? 1 : 0)) < 1e-5);
  const seen = new Set<number>();
  for (let s = 0; s < d.train.n; s++) {
    const k = d.train.cluster[s]!;
    const y = d.train.y[s]!;
    seen.add(k);
    let label = 0, centre = 0, distract = 0, noise = 0;
    for (let p = 0; p < 5; p++) {
      const at = (s * 5 + p) * 12;
      const fy = dot(d.train.x, d.features[k]!, at) * y;
      const c = dot(d.train.x, d.centres[k]!, at);
      const others = d.features.map((f, j) => (j === k ? 0 : Math.abs(dot(d.train.x, f, at))));
      if (fy >= 1 - 1e-5 && fy <= 2 + 1e-5) label++;
      else if (c >= 0.5 - 1e-5 && c <= 1 + 1e-5) centre++;
      else if (Math.max(...others) >= 0.5 - 1e-5) distract++;
      else noise++;
    }
    assert.deepEqual([label, centre, distract, noise], [1, 1, 1, 2], `sample ${s}`);
  }
  assert.equal(seen.size, 3);
});

test('clusters: dim too small for the clusters is a user error', () => {
  const ds = dataSet('clusters');
  ds.synthetic = { ...ds.synthetic, clusters: 8, dim: 10 };
  assert.throws(() => prepareClusters(ds, 0), /synthetic dim 10 is too small for 8 clusters/);
});

test('ClusterBatcher: deterministic batches that resume from their state', () => {
  const ds = dataSet('clusters');
  const d = prepareClusters(ds, 1);
  const a = new ClusterBatcher(d.train, d.patches, d.dim, 8, 3);
  const first = [a.next(), a.next()].map((b) => Array.from(b.cluster));
  const saved = JSON.parse(JSON.stringify(a.state()));
  const third = Array.from(a.next().x);
  const b = new ClusterBatcher(d.train, d.patches, d.dim, 8, 3);
  assert.deepEqual([b.next(), b.next()].map((x) => Array.from(x.cluster)), first);
  const c = new ClusterBatcher(d.train, d.patches, d.dim, 8, 3);
  c.restore(saved);
  assert.deepEqual(Array.from(c.next().x), third);
});
