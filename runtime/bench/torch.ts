// The PyTorch side of `npm run bench`: runs runtime/bench/torch/bench.py (the same GPT-2 / MoE model
// in PyTorch on the CPU) in a child process, so its figures come from the same machine in the same run.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Model, Train } from '../../compiler/frontend/types.js';

export interface TorchMoe {
  experts: number;
  top: number;
  /** 0-based indices of the MoE layers. */
  layers: number[];
  normalize: boolean;
  /** Weight of the Switch load-balancing loss. */
  balance: number;
  /** Expert choice (Zhou et al. 2022) over each sequence or the micro-batch, capacity factor `capacity`; absent: token choice. */
  choice?: { group: 'batch' | 'sequence'; capacity: number };
  /** The balance loss per sequence, averaged (DeepSeek-V3); absent: over the micro-batch. */
  balanceOver?: 'batch' | 'sequence';
  /** Auxiliary-loss-free balancing: MoE layer (as a string) -> its per-expert selection bias (the cross-check's forward; bench.py never updates it). */
  bias?: Record<string, number[]>;
  /** The routed experts' hidden width (moe expert-width); absent: ffn. */
  expertWidth?: number;
  /** Shared experts (DeepSeekMoE) and their hidden width; absent: none, ffn. */
  shared?: number;
  sharedWidth?: number;
}

export interface TorchModel {
  layers: number;
  width: number;
  heads: number;
  ffn: number;
  vocab: number;
  context: number;
  dropout: number;
  moe: TorchMoe | null;
}

export interface TorchBenchConfig {
  model: TorchModel;
  batch: number;
  /** Timed steps. */
  steps: number;
  /** Untimed steps before them. */
  warmup: number;
  lr: number;
  wd: number;
  betas: [number, number];
  eps: number;
  /** Global gradient-norm clip; 0 = off. */
  clip: number;
  seed: number;
  /** torch and OpenBLAS threads; default: every core this process may use. */
  threads?: number;
}

export interface TorchResult {
  tokens_per_s: number;
  /** Mean over the timed steps. */
  ms_per_step: number;
  ms_per_step_min: number;
  ms_per_step_median: number;
  steps: number;
  threads: number;
  /** PASSIVE unless the environment set it (bench.py explains why). */
  omp_wait_policy: string;
  /** torch.__version__ */
  torch: string;
  /** The BLAS library torch's matmuls reach, e.g. `OpenBLAS 0.3.21 ... (libblas.so.3, 2 threads)`; `not OpenBLAS: ...` otherwise. */
  blas: string;
  /** A 1024³ f32 matmul in the same process: what the BLAS delivers. */
  matmul_gflops: number;
  params: number;
  loss_first: number;
  loss_last: number;
}

export interface TorchCheckResult {
  /** What the gradients are of: ce + balance weight × balance. */
  loss: number;
  ce: number;
  /** Unweighted Switch balance loss, summed over MoE layers (0 for a dense model). */
  balance: number;
  /** Parameters, each written as `grad.NAME`. */
  tensors: number;
  batch: number;
  context: number;
  threads: number;
  torch: string;
}

export interface TorchSkipped {
  skipped: string;
}

export const torchMissing = 'python3-torch not installed: run bash runtime/bench/torch/install.sh';

/** Model settings bench.py does not implement: the comparison would not be like for like. */
function unsupportedMoe(m: NonNullable<Model['moe']>): string[] {
  const want: [string, unknown, unknown][] = [
    ['unit', m.unit, 'token'],
    ['scope', m.scope, 'layer'],
    ['router', m.router, 'learned'],
    ['gate', m.gate, 'softmax-topk'],
    ['noise', m.noise, 0],
    ['dropless', m.dropless, m.choice !== 'expert'],
    ['zloss', m.zloss, 0],
    ['expert', m.expert, 'mlp'],
    ['activation', m.activation, 'gelu'],
    ['second', m.second, 'top'],
    ['dispatch', m.dispatch, 'sparse'],
    ['biasRate', m.biasRate ?? 0, 0],
  ];
  return want.filter(([, got, need]) => got !== need).map(([k, got, need]) => `moe.${k} ${String(got)} (bench.py has ${String(need)})`);
}

/** The routed and shared experts' widths and the shared experts, where they are not the defaults. */
export function torchWidths(m: Pick<NonNullable<Model['moe']>, 'expertWidth' | 'sharedWidth' | 'shared'>): Pick<TorchMoe, 'expertWidth' | 'shared' | 'sharedWidth'> {
  return { ...(m.expertWidth ? { expertWidth: m.expertWidth } : {}), ...(m.shared ? { shared: m.shared } : {}), ...(m.sharedWidth ? { sharedWidth: m.sharedWidth } : {}) };
}

/** The PyTorch model of a resolved moec model; throws when it uses an MoE option bench.py lacks. */
export function torchModel(m: Model): TorchModel {
  let moe: TorchMoe | null = null;
  if (m.moe) {
    const bad = unsupportedMoe(m.moe);
    if (bad.length) throw new Error(`the PyTorch bench model cannot run ${bad.join(', ')}`);
    moe = { experts: m.moe.experts, top: m.moe.top, layers: [...m.moe.layers], normalize: m.moe.normalize, balance: m.moe.balance, ...torchWidths(m.moe),
      ...(m.moe.choice === 'expert' ? { choice: { group: m.moe.choiceGroup ?? 'batch', capacity: m.moe.capacity } } : {}),
      ...(m.moe.balanceOver === 'sequence' ? { balanceOver: 'sequence' as const } : {}) };
  }
  return { layers: m.layers, width: m.width, heads: m.heads, ffn: m.ffn, vocab: m.vocab, context: m.context, dropout: m.dropout, moe };
}

/** A bench config from a resolved model and its training block (constant lr: the schedule does not change the step's cost). */
export function torchConfig(m: Model, t: Pick<Train, 'batch' | 'lr' | 'wd' | 'betas' | 'eps' | 'clip' | 'seed'>, run: { steps: number; warmup: number; threads?: number }): TorchBenchConfig {
  const c: TorchBenchConfig = { model: torchModel(m), batch: t.batch, steps: run.steps, warmup: run.warmup, lr: t.lr, wd: t.wd, betas: t.betas, eps: t.eps, clip: t.clip, seed: t.seed };
  if (run.threads !== undefined) c.threads = run.threads;
  return c;
}

/** Parameter names and shapes of the model, as bench.py names them (HF GPT-2, Conv1D weights (in, out)). */
export function torchParamShapes(m: TorchModel): [string, number[]][] {
  const { width: C, ffn: F } = m;
  const mlp = (p: string): [string, number[]][] => [
    [`${p}.c_fc.weight`, [C, F]],
    [`${p}.c_fc.bias`, [F]],
    [`${p}.c_proj.weight`, [F, C]],
    [`${p}.c_proj.bias`, [C]],
  ];
  const out: [string, number[]][] = [
    ['wte.weight', [m.vocab, C]],
    ['wpe.weight', [m.context, C]],
  ];
  const moeLayers = new Set(m.moe?.layers ?? []);
  for (let l = 0; l < m.layers; l++) {
    const h = `h.${l}`;
    out.push([`${h}.ln_1.weight`, [C]], [`${h}.ln_1.bias`, [C]]);
    out.push([`${h}.attn.c_attn.weight`, [C, 3 * C]], [`${h}.attn.c_attn.bias`, [3 * C]]);
    out.push([`${h}.attn.c_proj.weight`, [C, C]], [`${h}.attn.c_proj.bias`, [C]]);
    out.push([`${h}.ln_2.weight`, [C]], [`${h}.ln_2.bias`, [C]]);
    if (m.moe && moeLayers.has(l)) {
      out.push([`${h}.mlp.router.weight`, [C, m.moe.experts]]);
      for (let e = 0; e < m.moe.experts; e++) out.push(...mlp(`${h}.mlp.experts.${e}`));
    } else out.push(...mlp(`${h}.mlp`));
  }
  out.push(['ln_f.weight', [C]], ['ln_f.bias', [C]]);
  return out;
}

/** bench.py, found from this module upward: the .py files stay in the source tree, whatever tsc's outDir. */
export function benchScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const script = join(dir, 'runtime', 'bench', 'torch', 'bench.py');
    if (existsSync(script)) return script;
    const up = dirname(dir);
    if (up === dir) throw new Error('runtime/bench/torch/bench.py not found above ' + dirname(fileURLToPath(import.meta.url)));
    dir = up;
  }
}

interface ExecResult {
  stdout: string;
  stderr: string;
  /** The exit status; null when the process could not start or was killed. */
  code: number | null;
  error?: Error;
}

function exec(file: string, args: string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (!error) return resolve({ stdout, stderr, code: 0 });
      // error.code is the exit status, or a string such as 'ENOENT' when nothing ran.
      const code = typeof error.code === 'number' ? error.code : null;
      resolve({ stdout, stderr, code, error });
    });
  });
}

let probe: Promise<{ python: string } | { why: string }> | undefined;

/**
 * The first Python that imports torch: $MOEC_PYTHON, python3 on PATH, then /usr/bin/python3 (Debian's
 * python3-torch lives in the system Python; a pyenv or venv python3 earlier on PATH does not see it);
 * else why not, per candidate: a missing torch and an import that timed out read differently.
 */
function torchProbe(): Promise<{ python: string } | { why: string }> {
  return (probe ??= (async () => {
    const candidates = [process.env.MOEC_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
    const why: string[] = [];
    for (const p of [...new Set(candidates)]) {
      // A missing torch fails at once; a slow import (a loaded machine: 109 s was seen) is waited for, not taken for a missing one.
      const r = await exec(p, ['-c', 'import numpy, torch; torch.ones(1)'], 300_000);
      if (r.code === 0) return { python: p };
      const killed = r.code === null && (r.error as { killed?: boolean } | undefined)?.killed;
      why.push(`${p}: ${killed ? 'import torch timed out after 300 s (a loaded machine?)' : r.code === null ? `did not run (${r.error?.message ?? 'unknown'})` : r.stderr.trim().split('\n').at(-1) ?? `exit ${r.code}`}`);
    }
    return { why: why.join('; ') };
  })());
}

export async function torchPython(): Promise<string | null> {
  const r = await torchProbe();
  return 'python' in r ? r.python : null;
}

/** Why the PyTorch checks skip: null when torch imports, else each Python's failure and how to install it. */
export async function torchSkipReason(): Promise<string | null> {
  const r = await torchProbe();
  return 'python' in r ? null : `${torchMissing} (${r.why})`;
}

async function runScript<T>(args: string[], config: TorchBenchConfig, timeoutMs: number): Promise<T | TorchSkipped> {
  const py = await torchPython();
  if (!py) return { skipped: (await torchSkipReason()) ?? torchMissing };
  const dir = mkdtempSync(join(tmpdir(), 'moec-torch-'));
  try {
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    const r = await exec(py, [benchScript(), ...args.map((a) => (a === '{config}' ? configPath : a))], timeoutMs);
    if (r.code !== 0) {
      const why = r.code === null ? `${r.error?.message ?? 'killed'}` : `exit ${r.code}`;
      throw new Error(`bench.py failed (${why}): ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
    }
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new Error(`bench.py printed no JSON result: ${JSON.stringify(r.stdout.slice(-500))}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Times the model's training step in PyTorch; `{skipped}` when torch is not installed. */
export function torchBench(config: TorchBenchConfig, opts: { timeoutMs?: number } = {}): Promise<TorchResult | TorchSkipped> {
  return runScript<TorchResult>(['{config}'], config, opts.timeoutMs ?? 600_000);
}

/**
 * One forward/backward in PyTorch without dropout on the weights in `weightsPath` (safetensors, names
 * as torchParamShapes) and the tokens in `tokensPath` (uint32 LE: batch·T inputs then batch·T targets,
 * 0xFFFFFFFF = ignored). Writes `loss`, `loss.ce`, `loss.balance` and `grad.NAME` (F32) to `outPath`.
 */
export function torchCheck(weightsPath: string, tokensPath: string, config: TorchBenchConfig, outPath: string, opts: { timeoutMs?: number } = {}): Promise<TorchCheckResult | TorchSkipped> {
  return runScript<TorchCheckResult>(['--check', weightsPath, tokensPath, '{config}', outPath], config, opts.timeoutMs ?? 600_000);
}

export function isSkipped<T extends object>(r: T | TorchSkipped): r is TorchSkipped {
  return 'skipped' in r;
}
