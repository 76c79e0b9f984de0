// Text generation from a trained trial on the GPU, with the trial's own tokenizer. There is no KV
// cache: every new token runs the trial's forward pass (the training kernels, batch 1) over the
// whole window of the last `context` tokens, so a token costs one forward of `context` positions
// whatever the prompt's length (`msPerToken` says what that is on the adapter in use).
import { rng } from '../../compiler/reference/random.js';
import { NO_SLOT } from '../../compiler/routing/slots.js';
import { UserError } from '../../grammar/user-error.js';
import { tokenizer, type Tokenizer } from '../data/index.js';
import type { Gpu } from '../gpu/device.js';
import { GpuModel } from '../train/model.js';
import { compileFor, languageModelConfig, loadWeights, type TrainedTrial } from '../eval/trained.js';

export interface SampleOptions {
  prompt: string;
  tokens: number;
  /** 0: greedy (argmax). */
  temperature: number;
  /** 0: the whole vocabulary. */
  topK: number;
  seed: number;
  /** Record which experts each generated token went to. */
  experts: boolean;
  /** The label id a label router routes by (one per sequence). */
  label?: number;
}

export interface SampledToken {
  id: number;
  text: string;
  /** Routing layer → the experts this token went to (first choice first); absent without --experts. */
  experts?: Record<string, number[]>;
}

export interface SampleResult {
  trial: string;
  step: number;
  tokenizer: string;
  prompt: string;
  promptTokens: number;
  text: string;
  tokens: SampledToken[];
  /** MoE layers that route (with global scope, one decision serves every MoE layer). */
  routingLayers: number[];
  unit: 'token' | 'sequence' | null;
  scope: 'layer' | 'global' | null;
  context: number;
  /** Per token after the first (each a full-window forward and its read-backs). */
  msPerToken: number;
  /** The first token, which also builds the GPU pipelines. */
  firstTokenMs: number;
}

/** Samples token id from a logits row with temperature and top-k; `u` is a uniform draw in [0, 1). */
export function pickToken(logits: Float32Array, temperature: number, topK: number, u: number): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature <= 0) return best;
  let ids = Array.from(logits.keys());
  if (topK > 0 && topK < ids.length) ids = ids.sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, topK);
  const m = logits[best]!;
  const w = ids.map((i) => Math.exp((logits[i]! - m) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let left = u * total;
  for (let j = 0; j < ids.length; j++) {
    left -= w[j]!;
    if (left < 0) return ids[j]!;
  }
  return ids[ids.length - 1]!;
}

/** Generates `o.tokens` tokens after the prompt. Deterministic for a seed on a given adapter. */
export async function sample(gpu: Gpu, t: TrainedTrial, o: SampleOptions): Promise<SampleResult> {
  const c = languageModelConfig(t, 'sampling');
  const moe = c.model.moe;
  if (moe?.router === 'label' && o.label === undefined) {
    throw new UserError(`this model routes by the label '${moe.label}': say which value to route by`, { where: '--label', hint: "pass --label ID (the value's index, as 'moec data stats' lists the values)" });
  }
  const tok: Tokenizer = tokenizer(c.data[c.train.data]!.tokenizer);
  const ids = Array.from(tok.encode(o.prompt));
  if (!ids.length) ids.push(tok.eot); // an empty prompt starts a new document
  const compiled = compileFor(c, 1, `sample ${t.record.id}`);
  const model = await GpuModel.create(gpu, compiled, `sample ${t.record.id}`);
  try {
    loadWeights(model, t);
    const T = c.model.context;
    const V = c.model.vocab;
    const layers = o.experts ? model.io.stats.filter((s) => s.sel !== undefined && s.selPerToken !== null) : [];
    const logits = model.io.outputs.logits;
    if (!logits) throw new Error(`plan ${compiled.plan.name} keeps no logits to sample from`);
    const draw = rng(o.seed);
    const window = new Uint32Array(T);
    const labels = o.label !== undefined ? Uint32Array.of(o.label) : undefined;
    const out: SampledToken[] = [];
    const started = performance.now();
    let firstDone = started;
    for (let i = 0; i < o.tokens; i++) {
      const ctx = ids.slice(-T);
      // Positions past the text hold end-of-text tokens; causal attention never lets them reach it.
      window.fill(tok.eot);
      window.set(ctx);
      model.forward(window, labels);
      const p = ctx.length - 1;
      const row = new Float32Array(await model.ex.readRange(logits, p * V * 4, V * 4));
      const id = pickToken(row, o.temperature, o.topK, draw());
      const rec: SampledToken = { id, text: tok.decode([id]) };
      if (layers.length) {
        rec.experts = {};
        for (const { layer, sel: buffer, selPerToken: K } of layers) {
          const sel = new Uint32Array(await model.ex.readRange(buffer!, p * K! * 4, K! * 4));
          rec.experts[String(layer)] = Array.from(sel).filter((e) => e !== NO_SLOT); // expert choice: NO_SLOT where an expert did not choose it
        }
      }
      out.push(rec);
      ids.push(id);
      if (i === 0) firstDone = performance.now();
    }
    const end = performance.now();
    // The first token also pays for building the GPU pipelines; the rate is of the tokens after it.
    const ms = o.tokens > 1 ? (end - firstDone) / (o.tokens - 1) : end - started;
    return {
      trial: t.record.id, step: t.step, tokenizer: tok.name, prompt: o.prompt, promptTokens: ids.length - out.length,
      text: tok.decode(out.map((x) => x.id)), tokens: out, routingLayers: layers.map((s) => s.layer), unit: moe?.unit ?? null, scope: moe?.scope ?? null, context: T, msPerToken: ms, firstTokenMs: firstDone - started,
    };
  } finally {
    model.destroy();
  }
}
