// The data sets of a sweep, each prepared (fetched and tokenised on first use) once per process.
import type { DataSet, Trial } from '../../compiler/frontend/index.js';
import { UserError } from '../../grammar/user-error.js';
import { prepareDataset, type PreparedClusters, type PreparedData, type PreparedText } from '../data/index.js';

/** Prepares (fetching and tokenising on first use) every data set the trials train or evaluate on. */
export async function prepareSweepData(trials: Trial[], log: (msg: string) => void): Promise<SweepData> {
  const data = new SweepData(log);
  for (const t of trials) {
    const c = t.config;
    await data.any(c.data[c.train.data]!);
    for (const ref of [...c.evaluate.perplexity, ...c.evaluate.experts]) await data.any(c.data[ref.data]!);
  }
  return data;
}

/** Prepares each data set once per sweep (the cache makes later sweeps fast). */
export class SweepData {
  private readonly ready = new Map<string, Promise<PreparedData>>();
  constructor(private readonly log: (msg: string) => void) {}

  any(ds: DataSet): Promise<PreparedData> {
    const key = JSON.stringify(ds);
    let p = this.ready.get(key);
    if (!p) {
      p = prepareDataset(ds, { log: this.log });
      this.ready.set(key, p);
    }
    return p;
  }

  /** A text data set; the cluster task's data is refused where a language model needs text. */
  async get(ds: DataSet): Promise<PreparedText> {
    const d = await this.any(ds);
    if (d.kind !== 'text') throw new UserError(`data '${ds.name}' is the synthetic cluster task, which a language model cannot train or be evaluated on`, { hint: 'use a text source for a GPT-style model' });
    return d;
  }

  async clusters(ds: DataSet): Promise<PreparedClusters> {
    const d = await this.any(ds);
    if (d.kind !== 'clusters') throw new UserError(`data '${ds.name}' is text, which the patch model of the cluster task cannot train or be evaluated on`, { hint: 'use source clusters' });
    return d;
  }
}

