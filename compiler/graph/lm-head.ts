// The tied LM head and softmax cross-entropy, chunked over tokens when the logits of a whole
// micro-batch would be large (the fused-linear-cross-entropy idea of llm.c and Liger): each chunk of
// rows computes its logits x·Wᵀ, their row logsumexp and loss; the backward recomputes the chunk's
// logits, turns them into dlogits in place and uses them at once for dx and the accumulated dW. No
// buffer then holds B×T×V logits, only one chunk of them.
import type { MatmulShape } from '../reference/matmul.js';
import type { Graph } from './ir.js';
import { matmul } from '../kernels/matmul.js';
import { crossEntropyBackward, crossEntropyForward, crossEntropyMean } from '../kernels/crossentropy.js';
import { crossEntropyPartBackward, crossEntropyPartForward, crossEntropyPartLoss } from '../kernels/crossentropy-parts.js';
import { ALIGN_FLOATS, DEFAULT_REGION_BYTES } from './layout.js';

/** Logits of one chunk stay under this (the chunk is a whole micro-batch when that fits). */
export const HEAD_CHUNK_BYTES = 32 * 2 ** 20;
/**
 * Chunks start on multiples of this many rows, so each view's byte offset (rows × C × 4 of x,
 * rows × 4 of the targets and losses) is a multiple of WebGPU's minStorageBufferOffsetAlignment (at most 256).
 */
export const HEAD_CHUNK_ALIGN = 64;

export interface LmHeadSpec {
  /** Rows (tokens of the micro-batch), width, vocabulary. */
  N: number;
  C: number;
  V: number;
  /** Scale of the loss gradient (1 / micro-batches per step). */
  gradScale: number;
  /** Rows per chunk; default from HEAD_CHUNK_BYTES. */
  chunkRows?: number;
  /** Wraps each matmul's shape (f16 operands); `weight`: whether operand B is the weight. */
  mm?: (s: MatmulShape, weight: boolean) => MatmulShape;
  /**
   * Row ranges of W (and dW) bound as separate views, each under the binding limit (see
   * vocabParts); the head then chunks over the vocabulary too. Default: one part, all V rows.
   */
  parts?: VocabPart[];
}

/** Rows [v0, v0 + rows) of the (tied) vocabulary matrix, bound as one view. */
export interface VocabPart {
  v0: number;
  rows: number;
}

/**
 * Cuts a V×C matrix into row parts of at most `maxBytes` each (WebGPU binds a storage buffer only up
 * to maxStorageBufferBindingSize): one part when it fits. Each part's rows × C is a multiple of 64
 * floats, so every part starts on a 256-byte binding offset inside its parameter region. `rows`
 * forces the rows per part (tests).
 */
export function vocabParts(V: number, C: number, maxBytes = DEFAULT_REGION_BYTES, rows?: number): VocabPart[] {
  const step = ALIGN_FLOATS / gcd(C, ALIGN_FLOATS);
  if (rows !== undefined) {
    if (!Number.isInteger(rows) || rows <= 0 || rows % step !== 0) throw new Error(`lm head: parts of ${rows} vocabulary rows are not a positive multiple of ${step} (width ${C})`);
  } else {
    if (4 * V * C <= maxBytes) return [{ v0: 0, rows: V }];
    const most = Math.floor(maxBytes / (4 * C) / step) * step;
    if (most < step) throw new Error(`lm head: a binding of ${maxBytes} bytes holds no ${step} rows of width ${C}`);
    // Equal parts (rounded up to the step), so no part is a small remainder.
    const n = Math.ceil(V / most);
    rows = Math.min(most, Math.ceil(V / n / step) * step);
  }
  const parts: VocabPart[] = [];
  for (let v0 = 0; v0 < V; v0 += rows) parts.push({ v0, rows: Math.min(rows, V - v0) });
  return parts;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Tensors the head reads and writes: x (N×C), W (V×C, tied), dW (accumulated), dx (N×C, overwritten). */
export interface LmHeadTensors {
  x: string;
  W: string;
  dW: string;
  dx: string;
  targets: string;
  /** The 2-float output: mean loss and the gradient scale the backward reads. */
  loss: string;
  /** With vocabulary parts: the tensor each part's matmuls read as W (f16 copies per part); default rows of W. */
  partW?: string[];
}

/** Rows per chunk: all N when N×V logits fit HEAD_CHUNK_BYTES, else the largest aligned count that does. */
export function headChunkRows(N: number, V: number, override?: number): number {
  if (override !== undefined) {
    if (!Number.isInteger(override) || override <= 0 || override % HEAD_CHUNK_ALIGN !== 0) throw new Error(`lm head: chunk of ${override} rows is not a positive multiple of ${HEAD_CHUNK_ALIGN}`);
    return Math.min(override, N);
  }
  if (4 * N * V <= HEAD_CHUNK_BYTES) return N;
  return Math.max(HEAD_CHUNK_ALIGN, Math.floor(HEAD_CHUNK_BYTES / (4 * V) / HEAD_CHUNK_ALIGN) * HEAD_CHUNK_ALIGN);
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/**
 * Adds the head's forward (into the 'forward' phase: logits, per-row losses, their mean) and returns
 * `backward()`, which adds the 'backward' ops where the caller wants them in the op order.
 */
export function addLmHead(g: Graph, s: LmHeadSpec, t: LmHeadTensors): { backward(): void } {
  const { N, C, V } = s;
  const mm = s.mm ?? ((x: MatmulShape) => x);
  if (s.parts && s.parts.length > 1) return addPartedLmHead(g, s, t, s.parts, mm);
  const R = headChunkRows(N, V, s.chunkRows);
  if (R >= N) {
    // One chunk: the unchunked head, op for op (the plans of small vocabularies do not change).
    const logits = g.tensor('logits', [N, V], 'activation');
    const losses = g.tensor('losses', [N], 'activation');
    g.op('forward', 'lm_head', matmul, [mm({ m: N, n: V, k: C, transB: true }, true)], { A: t.x, B: t.W, C: logits });
    g.op('forward', 'loss', crossEntropyForward, [{ N, V }], { logits: logits, targets: t.targets, losses: losses });
    g.op('forward', 'loss.mean', crossEntropyMean, [{ N, V }, s.gradScale], { losses: losses, targets: t.targets, meanOut: t.loss });
    return {
      backward() {
        g.op('backward', 'loss.dlogits', crossEntropyBackward, [{ N, V }], { logits: logits, targets: t.targets, meanOut: t.loss });
        g.op('backward', 'lm_head.dx', matmul, [mm({ m: N, n: C, k: V }, true)], { A: logits, B: t.W, C: t.dx });
        g.op('backward', 'lm_head.dW', matmul, [mm({ m: V, n: C, k: N, transA: true, accumulate: true }, false)], { A: logits, B: t.x, C: t.dW });
      },
    };
  }
  const chunks: { i: number; r0: number; rows: number }[] = [];
  for (let r0 = 0, i = 0; r0 < N; r0 += R, i++) chunks.push({ i, r0, rows: Math.min(R, N - r0) });
  // One chunk buffer for the forward and one for the backward, so neither lives across the other.
  const logits = g.tensor('logits', [R, V], 'activation');
  const losses = g.tensor('losses', [N], 'activation');
  const dlogits = g.tensor('dlogits', [R, V], 'activation');
  const chunkOf = (buf: string, rows: number) => (rows === R ? buf : g.rowsOf(buf, 0, rows, V));
  for (const { i, r0, rows } of chunks) {
    const x = g.rowsOf(t.x, r0, rows, C);
    const lg = chunkOf(logits, rows);
    g.op('forward', `lm_head.c${i}`, matmul, [mm({ m: rows, n: V, k: C, transB: true }, true)], { A: x, B: t.W, C: lg });
    g.op('forward', `loss.c${i}`, crossEntropyForward, [{ N: rows, V }], { logits: lg, targets: g.rowsOf(t.targets, r0, rows, 1), losses: g.rowsOf(losses, r0, rows, 1) });
  }
  g.op('forward', 'loss.mean', crossEntropyMean, [{ N, V }, s.gradScale], { losses: losses, targets: t.targets, meanOut: t.loss });
  g.notes.push(
    `LM head chunked over tokens: ${chunks.length} chunks of ${R} rows, logits ${mib(4 * R * V)} per chunk instead of ${mib(4 * N * V)}; ` +
      `the backward recomputes each chunk's logits (${(2 * N * V * C / 1e9).toFixed(2)} GFLOP more per micro-batch)`,
  );
  return {
    backward() {
      for (const { i, r0, rows } of chunks) {
        const x = g.rowsOf(t.x, r0, rows, C);
        const d = chunkOf(dlogits, rows);
        g.op('backward', `lm_head.recompute.c${i}`, matmul, [mm({ m: rows, n: V, k: C, transB: true }, true)], { A: x, B: t.W, C: d });
        g.op('backward', `loss.dlogits.c${i}`, crossEntropyBackward, [{ N: rows, V }], { logits: d, targets: g.rowsOf(t.targets, r0, rows, 1), meanOut: t.loss });
        g.op('backward', `lm_head.dx.c${i}`, matmul, [mm({ m: rows, n: C, k: V }, true)], { A: d, B: t.W, C: g.rowsOf(t.dx, r0, rows, C) });
        g.op('backward', `lm_head.dW.c${i}`, matmul, [mm({ m: V, n: C, k: rows, transA: true, accumulate: true }, false)], { A: d, B: x, C: t.dW });
      }
    },
  };
}

/** Token chunks of R rows (the last one shorter) over N rows. */
function tokenChunks(N: number, R: number): { i: number; r0: number; rows: number }[] {
  const chunks: { i: number; r0: number; rows: number }[] = [];
  for (let r0 = 0, i = 0; r0 < N; r0 += R, i++) chunks.push({ i, r0, rows: Math.min(R, N - r0) });
  return chunks;
}

/**
 * The head over a vocabulary cut into row parts of W (each its own binding): each token chunk's
 * logits are computed one part at a time, and each part folds its row max and Σ exp into running
 * per-row statistics (online logsumexp) and picks the target logit if the target is in it; the loss
 * follows from the statistics. The backward recomputes a chunk's logits part by part, turns them
 * into dlogits with the row logsumexp, and adds each part's dx (summed over parts) and its dW part.
 */
function addPartedLmHead(g: Graph, s: LmHeadSpec, t: LmHeadTensors, parts: VocabPart[], mm: (s: MatmulShape, weight: boolean) => MatmulShape): { backward(): void } {
  const { N, C, V } = s;
  if (parts.reduce((a, p) => a + p.rows, 0) !== V || parts.some((p, i) => p.v0 !== (i === 0 ? 0 : parts[i - 1]!.v0 + parts[i - 1]!.rows))) throw new Error('lm head: vocabulary parts do not tile the vocabulary');
  const Vp = Math.max(...parts.map((p) => p.rows));
  const R = headChunkRows(N, Vp, s.chunkRows);
  const chunks = tokenChunks(N, R);
  if (t.partW && t.partW.length !== parts.length) throw new Error(`lm head: ${t.partW.length} part weights for ${parts.length} vocabulary parts`);
  const W = t.partW ?? parts.map((p) => g.rowsOf(t.W, p.v0, p.rows, C));
  const dW = parts.map((p) => g.rowsOf(t.dW, p.v0, p.rows, C));
  const logits = g.tensor('logits', [R, Vp], 'activation');
  const dlogits = g.tensor('dlogits', [R, Vp], 'activation');
  const losses = g.tensor('losses', [N], 'activation');
  // Per row: running max, running Σ exp(l - max), target logit.
  const stats = g.tensor('ce.stats', [N, 3], 'activation');
  const block = (buf: string, rows: number, cols: number) => (rows === R && cols === Vp ? buf : g.rowsOf(buf, 0, rows * cols, 1));
  const whole = N === R;
  const rowsOf = (buf: string, r0: number, rows: number, len: number) => (whole ? buf : g.rowsOf(buf, r0, rows, len));
  for (const { i, r0, rows } of chunks) {
    const x = rowsOf(t.x, r0, rows, C);
    const tg = rowsOf(t.targets, r0, rows, 1);
    const st = rowsOf(stats, r0, rows, 3);
    parts.forEach((p, k) => {
      const lg = block(logits, rows, p.rows);
      g.op('forward', `lm_head.c${i}.v${k}`, matmul, [mm({ m: rows, n: p.rows, k: C, transB: true }, true)], { A: x, B: W[k]!, C: lg });
      g.op('forward', `loss.c${i}.v${k}`, crossEntropyPartForward, [{ N: rows, V, v0: p.v0, rows: p.rows, first: k === 0 }], { logits: lg, targets: tg, stats: st });
    });
  }
  g.op('forward', 'loss.rows', crossEntropyPartLoss, [{ N, V }], { stats: stats, targets: t.targets, losses: losses });
  g.op('forward', 'loss.mean', crossEntropyMean, [{ N, V }, s.gradScale], { losses: losses, targets: t.targets, meanOut: t.loss });
  g.notes.push(
    `LM head and embedding cut over the vocabulary: ${parts.length} parts of ${parts[0]!.rows} rows (${mib(4 * parts[0]!.rows * C)} each instead of ${mib(4 * V * C)}), ` +
      `${chunks.length} token chunk${chunks.length === 1 ? '' : 's'} of ${R} rows, logits ${mib(4 * R * Vp)} per chunk and part instead of ${mib(4 * N * V)}; ` +
      `the backward recomputes the logits (${(2 * N * V * C / 1e9).toFixed(2)} GFLOP more per micro-batch)`,
  );
  return {
    backward() {
      for (const { i, r0, rows } of chunks) {
        const x = rowsOf(t.x, r0, rows, C);
        const tg = rowsOf(t.targets, r0, rows, 1);
        const st = rowsOf(stats, r0, rows, 3);
        const dx = rowsOf(t.dx, r0, rows, C);
        parts.forEach((p, k) => {
          const d = block(dlogits, rows, p.rows);
          g.op('backward', `lm_head.recompute.c${i}.v${k}`, matmul, [mm({ m: rows, n: p.rows, k: C, transB: true }, true)], { A: x, B: W[k]!, C: d });
          g.op('backward', `loss.dlogits.c${i}.v${k}`, crossEntropyPartBackward, [{ N: rows, V, v0: p.v0, rows: p.rows }], { logits: d, targets: tg, meanOut: t.loss, stats: st });
          // dx of the first part overwrites, the others add: dx = Σ over parts of dlogits_p·W_p.
          g.op('backward', `lm_head.dx.c${i}.v${k}`, matmul, [mm({ m: rows, n: C, k: p.rows, ...(k > 0 ? { accumulate: true } : {}) }, true)], { A: d, B: W[k]!, C: dx });
          g.op('backward', `lm_head.dW.c${i}.v${k}`, matmul, [mm({ m: p.rows, n: C, k: rows, transA: true, accumulate: true }, false)], { A: d, B: x, C: dW[k]! });
        });
      }
    },
  };
}
