// The synthetic cluster task of Chen et al. 2022 ("Towards Understanding Mixture of Experts in Deep
// Learning", section 3 / definition 3.1), generated from a seed. What is generated, exactly:
//
// - 2K orthonormal vectors in R^dim (Gram-Schmidt on seeded Gaussian vectors): a feature vector v_k
//   and a centre vector c_k for each cluster k = 0..K-1 (needs dim >= 2K).
// - Each sample: a cluster k (uniform), a label y = +1 or -1 (uniform), another cluster k' != k
//   (uniform) and a sign e = +1 or -1 (uniform). Of its P patches, at positions in a random order:
//     one patch    y * a * v_k    the label signal,            a ~ U(feature)
//     one patch    b * c_k        the cluster-centre signal,   b ~ U(centre)
//     one patch    e * g * v_k'   a distractor: another cluster's feature with a random sign, g ~ U(distractor)
//                                 (only when P >= 3)
//     the rest     N(0, noise^2 I) Gaussian noise (Chen et al.'s N(0, (s/√d)²): noise = s/√dim).
//   and every patch is multiplied by `scale` (Chen et al.: 10). Only the label-signal patch says
//   anything about y; the centre patch says which cluster (so which expert) the sample belongs to.
// - samples (train + validation) are generated in order; the last round(samples * valid) are validation.
// - Everything derives from the data seed `synthetic.seed` (resolve turns `seed none` into the
//   trial's seed); the model's seed (initialisation, batches, router noise) is separate.
import type { DataSet } from '../../compiler/frontend/types.js';
import { clusterTrainSamples } from '../../compiler/lower/patch-settings.js';
import { UserError } from '../../grammar/user-error.js';
import { Rng } from './rng.js';
import type { ClusterSplit, PreparedClusters } from './types.js';

function orthonormal(count: number, dim: number, rng: Rng): Float32Array[] {
  const out: Float64Array[] = [];
  while (out.length < count) {
    const v = Float64Array.from({ length: dim }, () => rng.normal());
    for (const u of out) {
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += v[j]! * u[j]!;
      for (let j = 0; j < dim; j++) v[j] -= dot * u[j]!;
    }
    const norm = Math.hypot(...v);
    if (norm < 1e-6) continue;
    for (let j = 0; j < dim; j++) v[j] /= norm;
    out.push(v);
  }
  return out.map((v) => Float32Array.from(v));
}

function emptySplit(n: number, patches: number, dim: number): ClusterSplit {
  return { n, x: new Float32Array(n * patches * dim), y: new Int8Array(n), cluster: new Uint32Array(n) };
}

/** `fallbackSeed` is used only when the data set names no seed of its own (configs built in code). */
export function prepareClusters(ds: DataSet, fallbackSeed: number): PreparedClusters {
  const { clusters: K, patches: P, dim: D, noise, feature, distractor, samples } = ds.synthetic;
  const centre = ds.synthetic.centre ?? [0.5, 2];
  const scale = ds.synthetic.scale ?? 1;
  const seed = ds.synthetic.seed ?? fallbackSeed;
  const where = `data ${ds.name}`;
  if (D < 2 * K) throw new UserError(`synthetic dim ${D} is too small for ${K} clusters: each cluster needs a feature and a centre direction`, { where, hint: `set dim to at least ${2 * K}` });
  const nTrain = clusterTrainSamples(ds.synthetic, ds.valid);
  const nValid = samples - nTrain;
  if (nTrain < 1) throw new UserError(`synthetic samples ${samples} with valid ${ds.valid} leaves no training samples`, { where, hint: 'raise samples or lower valid' });
  const basis = orthonormal(2 * K, D, new Rng(seed, 0x5eed));
  const features = basis.slice(0, K);
  const centres = basis.slice(K);
  const train = emptySplit(nTrain, P, D);
  const valid = emptySplit(nValid, P, D);
  for (let i = 0; i < samples; i++) {
    const rng = new Rng(seed, 1, i);
    const [split, j] = i < nTrain ? [train, i] : [valid, i - nTrain];
    const k = rng.int(K);
    const y = rng.sign();
    const other = (k + 1 + rng.int(K - 1)) % K;
    const e = rng.sign();
    const a = rng.uniform(feature[0], feature[1]);
    const b = rng.uniform(centre[0], centre[1]);
    const g = rng.uniform(distractor[0], distractor[1]);
    const order = rng.shuffle(Array.from({ length: P }, (_, p) => p));
    split.y[j] = y;
    split.cluster[j] = k;
    const base = j * P * D;
    for (let slot = 0; slot < P; slot++) {
      const at = base + order[slot]! * D;
      const x = split.x;
      if (slot === 0) for (let d = 0; d < D; d++) x[at + d] = scale * y * a * features[k]![d]!;
      else if (slot === 1) for (let d = 0; d < D; d++) x[at + d] = scale * b * centres[k]![d]!;
      else if (slot === 2) for (let d = 0; d < D; d++) x[at + d] = scale * e * g * features[other]![d]!;
      else for (let d = 0; d < D; d++) x[at + d] = scale * noise * rng.normal();
    }
  }
  return {
    kind: 'clusters', name: ds.name, patches: P, dim: D, clusters: K,
    labels: [{ name: 'cluster', values: Array.from({ length: K }, (_, k) => String(k)) }],
    train, valid, features, centres,
  };
}

/** A batch of cluster samples: x is B * patches * dim. */
export interface ClusterBatch {
  x: Float32Array;
  y: Int8Array;
  cluster: Uint32Array;
}

/** Deterministic minibatches of training samples: batch i depends only on (seed, i). */
export class ClusterBatcher {
  position = 0;
  constructor(private readonly split: ClusterSplit, private readonly patches: number, private readonly dim: number, readonly batch: number, readonly seed: number) {}

  at(step: number): ClusterBatch {
    const rng = new Rng(this.seed, 0xc1a5, step);
    const s = this.patches * this.dim;
    const out: ClusterBatch = { x: new Float32Array(this.batch * s), y: new Int8Array(this.batch), cluster: new Uint32Array(this.batch) };
    for (let b = 0; b < this.batch; b++) {
      const i = rng.int(this.split.n);
      out.x.set(this.split.x.subarray(i * s, (i + 1) * s), b * s);
      out.y[b] = this.split.y[i]!;
      out.cluster[b] = this.split.cluster[i]!;
    }
    return out;
  }

  next(): ClusterBatch {
    return this.at(this.position++);
  }

  state(): { position: number } {
    return { position: this.position };
  }

  restore(state: { position: number }): void {
    this.position = state.position;
  }
}

/**
 * Full-batch gradient descent (Chen et al.): every step is the whole training split, each sample
 * once, in order. The batch is one object, so the model can tell it is unchanged and skip the upload.
 */
export class FullBatcher {
  position = 0;
  private readonly all: ClusterBatch;
  constructor(split: ClusterSplit) {
    this.all = { x: split.x, y: split.y, cluster: split.cluster };
  }

  get batch(): number {
    return this.all.y.length;
  }

  at(_step: number): ClusterBatch {
    return this.all;
  }

  next(): ClusterBatch {
    this.position++;
    return this.all;
  }

  state(): { position: number } {
    return { position: this.position };
  }

  restore(state: { position: number }): void {
    this.position = state.position;
  }
}
