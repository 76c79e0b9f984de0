import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterBatcher, FullBatcher, prepareClusters } from '../../../runtime/data/clusters.js';
import { dataSet } from './helpers.js';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>, ao = 0) => { let s = 0; for (let i = 0; i < b.length; i++) s += a[ao + i]! * b[i]!; return s; };

test('clusters: shapes, split, determinism, and the patch structure of Chen et al. 2022', () => {
  const ds = dataSet('clusters', { valid: 0.25 });
  ds.synthetic = { clusters: 3, patches: 5, dim: 12, noise: 0.05, feature: [1, 2], centre: [0.5, 1], distractor: [0.5, 1], samples: 200 };
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

test('clusters: separate centre and distractor ranges, the data scale, and a data seed of its own', () => {
  const ds = dataSet('clusters', { valid: 0.5 });
  ds.synthetic = { clusters: 3, patches: 4, dim: 10, noise: 0.2, feature: [0.5, 0.6], centre: [1.5, 1.6], distractor: [3, 3.2], samples: 60, scale: 10, seed: 5 };
  const d = prepareClusters(ds, 999);
  // The data set's own seed wins over the caller's fallback (the trial's seed is not the data seed).
  assert.deepEqual(prepareClusters(ds, 1).train.x, d.train.x);
  assert.notDeepEqual(prepareClusters({ ...ds, synthetic: { ...ds.synthetic, seed: 6 } }, 999).train.x, d.train.x);
  let noiseSq = 0;
  let noiseN = 0;
  for (let s = 0; s < d.train.n; s++) {
    const k = d.train.cluster[s]!;
    const y = d.train.y[s]!;
    const kinds: string[] = [];
    for (let p = 0; p < 4; p++) {
      const at = (s * 4 + p) * 10;
      const fy = dot(d.train.x, d.features[k]!, at) * y;
      const c = dot(d.train.x, d.centres[k]!, at);
      const other = Math.max(...d.features.map((f, j) => (j === k ? 0 : Math.abs(dot(d.train.x, f, at)))));
      // All × 10: label in [5, 6], centre in [15, 16], distractor in [30, 32].
      if (fy >= 5 - 1e-4 && fy <= 6 + 1e-4) kinds.push('label');
      else if (c >= 15 - 1e-4 && c <= 16 + 1e-4) kinds.push('centre');
      else if (other >= 30 - 1e-4 && other <= 32 + 1e-4) kinds.push('distractor');
      else {
        kinds.push('noise');
        for (let i = 0; i < 10; i++) noiseSq += d.train.x[at + i]! ** 2;
        noiseN += 10;
      }
    }
    assert.deepEqual(kinds.sort(), ['centre', 'distractor', 'label', 'noise'], `sample ${s}`);
  }
  // Noise std 0.2 × scale 10 = 2 per coordinate (300 draws: within 25%).
  const std = Math.sqrt(noiseSq / noiseN);
  assert.ok(std > 1.5 && std < 2.5, `noise std ${std}`);
});

test('FullBatcher: every training sample once per step, in order, the same batch every step', () => {
  const ds = dataSet('clusters');
  const d = prepareClusters(ds, 2);
  const f = new FullBatcher(d.train);
  assert.equal(f.batch, d.train.n);
  const a = f.next();
  assert.equal(f.next(), a);
  assert.deepEqual(Array.from(a.y), Array.from(d.train.y));
  assert.deepEqual(a.x, d.train.x);
  assert.deepEqual(f.state(), { position: 2 });
});
