import type { Train } from '../../compiler/frontend/types.js';

/**
 * Learning rate at optimiser step `step` (0-based): linear warm-up from lr/warmup to lr over
 * `warmup` steps, then constant, cosine or linear decay to minLr·lr at the last step.
 */
export function lrAt(step: number, t: Pick<Train, 'lr' | 'warmup' | 'schedule' | 'minLr' | 'steps'>): number {
  if (step < t.warmup) return (t.lr * (step + 1)) / t.warmup;
  if (t.schedule === 'constant') return t.lr;
  const span = Math.max(1, t.steps - t.warmup - 1);
  const progress = Math.min(1, (step - t.warmup) / span);
  const min = t.minLr * t.lr;
  const shape = t.schedule === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return min + (t.lr - min) * shape;
}
