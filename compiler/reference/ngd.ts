// CPU reference for normalised gradient descent over blocks (Chen et al. 2022 train each expert of
// their MoE this way): every block moves by lr in Frobenius norm, whatever its gradient's scale.

/**
 * For each of `blocks` blocks of `size` floats starting at `offset`: p ← p − lr·(g/‖g‖_F + wd·p),
 * with ‖g‖_F the norm of that block's gradient only. A block whose gradient is all zero (an expert
 * no sample was routed to) gets only the decoupled decay p ← p − lr·wd·p.
 */
export function ngdReference(params: Float32Array, grads: Float32Array, lr: number, weightDecay: number, offset: number, blocks: number, size: number): void {
  for (let m = 0; m < blocks; m++) {
    const start = offset + m * size;
    let ss = 0;
    for (let i = start; i < start + size; i++) ss += grads[i]! * grads[i]!;
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let i = start; i < start + size; i++) params[i] = params[i]! - lr * (grads[i]! * inv + weightDecay * params[i]!);
  }
}
