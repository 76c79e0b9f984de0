// `moec export`: a trained trial's weights (no optimiser state) as a Hugging Face GPT-2 checkpoint
// (dense models) or as config.json + model.safetensors + modeling_moec.py (any model moec trains,
// loadable with plain PyTorch, and a transformers remote-code model where transformers is present).
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrialConfig } from '../../compiler/frontend/types.js';
import { UserError } from '../../grammar/user-error.js';
import { writeFileAtomic, writeJsonAtomic } from '../store/atomic.js';
import { languageModelConfig, moecVersion, type TrainedTrial } from '../eval/trained.js';
import { type ExportDtype, writeWeights } from './safetensors-f16.js';

export type ExportFormat = 'hf' | 'torch';

export interface ExportResult {
  dir: string;
  files: string[];
  layout: 'gpt2' | 'moec';
  tensors: number;
}

/** The module file shipped with every moec-layout export (found above the built code, like bench.py). */
function modelingFile(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const f = path.join(dir, 'runtime', 'export', 'modeling_moec.py');
    if (existsSync(f)) return f;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('runtime/export/modeling_moec.py not found');
    dir = up;
  }
}

/** Why a model cannot be exported, or null. */
export function exportRefusal(c: TrialConfig): { message: string; hint: string } | null {
  const moe = c.model.moe;
  if (moe?.dispatch === 'soft') {
    return { message: 'Soft MoE (dispatch soft) is not exported: modeling_moec.py implements sparse routing only', hint: 'export a trial with dispatch sparse' };
  }
  if ((moe?.biasRate ?? 0) > 0) {
    return { message: "a trial with auxiliary-loss-free balancing (bias-rate) is not exported: modeling_moec.py does not add the routing bias to its top-k selection", hint: 'export a trial with bias-rate 0' };
  }
  return null;
}

/** The trial's configuration in moec-layout config.json (what modeling_moec.py reads). */
function moecConfig(c: TrialConfig, t: TrainedTrial, dtype: ExportDtype): Record<string, unknown> {
  const m = c.model;
  const ds = c.data[c.train.data]!;
  const moe = m.moe;
  return {
    architectures: ['MoecForCausalLM'], model_type: 'moec',
    auto_map: { AutoConfig: 'modeling_moec.MoecConfig', AutoModelForCausalLM: 'modeling_moec.MoecForCausalLM' },
    vocab_size: m.vocab, n_positions: m.context, n_embd: m.width, n_layer: m.layers, n_head: m.heads, n_inner: m.ffn,
    layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: true, torch_dtype: dtype === 'f16' ? 'float16' : 'float32',
    tokenizer: ds.tokenizer, eos_token_id: ds.tokenizer === 'gpt2' ? 50256 : 0, bos_token_id: ds.tokenizer === 'gpt2' ? 50256 : 0,
    moe: moe ? {
      experts: moe.experts, top: moe.top, unit: moe.unit, prefix: moe.prefix, scope: moe.scope, router: moe.router, label: moe.label, dim: moe.dim,
      gate: moe.gate, normalize: moe.normalize, capacity: moe.capacity, dropless: moe.dropless, shared: moe.shared, expert: moe.expert,
      activation: moe.activation, layers: moe.layers,
    } : null,
    moec: { version: moecVersion(), trial: t.record.id, name: t.record.name, step: t.step },
  };
}

/** Hugging Face GPT2Config for a dense trial. */
function gpt2Config(c: TrialConfig, t: TrainedTrial, dtype: ExportDtype): Record<string, unknown> {
  const m = c.model;
  const ds = c.data[c.train.data]!;
  const eos = ds.tokenizer === 'gpt2' ? 50256 : 0;
  return {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2',
    vocab_size: m.vocab, n_positions: m.context, n_ctx: m.context, n_embd: m.width, n_layer: m.layers, n_head: m.heads, n_inner: m.ffn,
    activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, initializer_range: 0.02,
    resid_pdrop: m.dropout, embd_pdrop: m.dropout, attn_pdrop: 0, scale_attn_weights: true, scale_attn_by_inverse_layer_idx: false, reorder_and_upcast_attn: false,
    summary_type: 'cls_index', summary_use_proj: true, summary_activation: null, summary_proj_to_labels: true, summary_first_dropout: 0.1,
    tie_word_embeddings: true, use_cache: true, bos_token_id: eos, eos_token_id: eos, torch_dtype: dtype === 'f16' ? 'float16' : 'float32',
    moec: { version: moecVersion(), trial: t.record.id, name: t.record.name, step: t.step, tokenizer: ds.tokenizer },
  };
}

/**
 * Writes the export into `out` (created; an existing non-empty directory is refused unless it holds
 * an earlier export). Only parameters are written: optimiser moments are left out.
 */
export function exportTrial(t: TrainedTrial, o: { format: ExportFormat; out: string; dtype: ExportDtype }): ExportResult {
  const c = languageModelConfig(t, 'export');
  const refused = exportRefusal(c);
  if (refused) throw new UserError(refused.message, { where: t.dir, hint: refused.hint });
  if (existsSync(o.out)) {
    if (!statSync(o.out).isDirectory()) throw new UserError('exists and is not a directory', { where: o.out, hint: 'choose another --out' });
    const entries = readdirSync(o.out).filter((n) => !/^\..*\.tmp-\d+$/.test(n));
    if (entries.length && !entries.includes('config.json')) throw new UserError('the directory is not empty and holds no export; refusing to write into it', { where: o.out, hint: 'choose another --out' });
  }
  mkdirSync(o.out, { recursive: true });
  const layout = o.format === 'hf' && !c.model.moe ? 'gpt2' : 'moec';
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of t.tensors) {
    if (name.startsWith('optimizer.') || name.startsWith('state.')) continue;
    tensors.set(`transformer.${name}`, { shape: v.shape, data: v.data });
  }
  const metadata = { format: 'pt', moec_version: moecVersion(), moec_config: JSON.stringify(c), moec_trial: t.record.id, moec_step: String(t.step), moec_layout: layout };
  const files = [path.join(o.out, 'config.json'), path.join(o.out, 'model.safetensors')];
  writeWeights(files[1]!, tensors, o.dtype, metadata);
  writeJsonAtomic(files[0]!, layout === 'gpt2' ? gpt2Config(c, t, o.dtype) : moecConfig(c, t, o.dtype));
  if (layout === 'moec') {
    const py = path.join(o.out, 'modeling_moec.py');
    writeFileAtomic(py, readFileSync(modelingFile()));
    files.push(py);
  }
  return { dir: o.out, files, layout, tensors: tensors.size };
}
