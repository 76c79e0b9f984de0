// The tied LM head and softmax cross-entropy, chunked over tokens when the logits of a whole
// micro-batch would be large (the fused-linear-cross-entropy idea of llm.c and Liger): each chunk of
// rows computes its logits x·Wᵀ, their row logsumexp and loss; the backward recomputes the chunk's
// logits, turns them into dlogits in place and uses them at once for dx and the accumulated dW. No
// buffer then holds B×T×V logits, only one chunk of them.
import type { MatmulShape } from '../reference/matmul.js';
import type { Graph } from './ir.js';

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
  const R = headChunkRows(N, V, s.chunkRows);
  if (R >= N) {
    // One chunk: the unchunked head, op for op (the plans of small vocabularies do not change).
    const logits = g.tensor('logits', [N, V], 'activation');
    const losses = g.tensor('losses', [N], 'activation');
    g.op('forward', 'lm_head', 'matmul', [mm({ m: N, n: V, k: C, transB: true }, true)], [t.x, t.W, logits]);
    g.op('forward', 'loss', 'ce_fwd', [{ N, V }], [logits, t.targets, losses]);
    g.op('forward', 'loss.mean', 'ce_mean', [{ N, V }, s.gradScale], [losses, t.targets, t.loss]);
    return {
      backward() {
        g.op('backward', 'loss.dlogits', 'ce_bwd', [{ N, V }], [logits, t.targets, t.loss]);
        g.op('backward', 'lm_head.dx', 'matmul', [mm({ m: N, n: C, k: V }, true)], [logits, t.W, t.dx]);
        g.op('backward', 'lm_head.dW', 'matmul', [mm({ m: V, n: C, k: N, transA: true, accumulate: true }, false)], [logits, t.x, t.dW]);
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
    g.op('forward', `lm_head.c${i}`, 'matmul', [mm({ m: rows, n: V, k: C, transB: true }, true)], [x, t.W, lg]);
    g.op('forward', `loss.c${i}`, 'ce_fwd', [{ N: rows, V }], [lg, g.rowsOf(t.targets, r0, rows, 1), g.rowsOf(losses, r0, rows, 1)]);
  }
  g.op('forward', 'loss.mean', 'ce_mean', [{ N, V }, s.gradScale], [losses, t.targets, t.loss]);
  g.notes.push(
    `LM head chunked over tokens: ${chunks.length} chunks of ${R} rows, logits ${mib(4 * R * V)} per chunk instead of ${mib(4 * N * V)}; ` +
      `the backward recomputes each chunk's logits (${(2 * N * V * C / 1e9).toFixed(2)} GFLOP more per micro-batch)`,
  );
  return {
    backward() {
      for (const { i, r0, rows } of chunks) {
        const x = g.rowsOf(t.x, r0, rows, C);
        const d = chunkOf(dlogits, rows);
        g.op('backward', `lm_head.recompute.c${i}`, 'matmul', [mm({ m: rows, n: V, k: C, transB: true }, true)], [x, t.W, d]);
        g.op('backward', `loss.dlogits.c${i}`, 'ce_bwd', [{ N: rows, V }], [d, g.rowsOf(t.targets, r0, rows, 1), t.loss]);
        g.op('backward', `lm_head.dx.c${i}`, 'matmul', [mm({ m: rows, n: C, k: V }, true)], [d, t.W, g.rowsOf(t.dx, r0, rows, C)]);
        g.op('backward', `lm_head.dW.c${i}`, 'matmul', [mm({ m: V, n: C, k: rows, transA: true, accumulate: true }, false)], [d, x, t.dW]);
      }
    },
  };
}
