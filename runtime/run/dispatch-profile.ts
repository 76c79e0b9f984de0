// `moec run --profile`: where a trial's training step spends its GPU time, per dispatch, measured
// once the trial has finished (after its last checkpoint, so nothing it saved is touched).
import type { KernelTime, PlanExecutor } from '../executor/executor.js';

export interface DispatchProfile {
  /** How the times were taken: GPU timestamps, or the host's clock around one submit per dispatch. */
  method: 'timestamp-queries' | 'submit-per-dispatch';
  runs: number;
  /** Sum over the dispatches of one step, in milliseconds. */
  total_ms: number;
  dispatches: KernelTime[];
}

/** profile.json: the training step's profile (as before) and every program's, by name. */
export interface TrialProfile extends DispatchProfile {
  programs: Record<string, DispatchProfile>;
}

/** Times `program`'s dispatches (`runs` runs after a warm-up) by timestamps where the adapter has them. */
export async function profileDispatches(ex: PlanExecutor, program: string, runs = 3): Promise<DispatchProfile> {
  const stamped = await ex.profile(program, runs);
  const times = stamped ?? (await ex.profileBySubmit(program, runs));
  const dispatches = [...times].sort((a, b) => b.ms - a.ms);
  return { method: stamped ? 'timestamp-queries' : 'submit-per-dispatch', runs, total_ms: dispatches.reduce((s, d) => s + d.ms, 0), dispatches };
}

/** The profile as a table, the `top` dispatches by time, and what the method measures. */
export function formatDispatchProfile(title: string, p: DispatchProfile, top = 20): string {
  const how = p.method === 'timestamp-queries'
    ? 'GPU timestamps around each dispatch'
    : 'host clock around one submit per dispatch (no timestamp queries on this adapter): each time includes the submit and wait, so small kernels read long';
  const rows = p.dispatches.slice(0, top).map((d) => {
    const rate = d.flops && d.ms > 0 ? `${(d.flops / d.ms / 1e6).toFixed(1).padStart(8)} GFLOP/s` : '';
    return `  ${d.ms.toFixed(3).padStart(10)} ms ${((100 * d.ms) / p.total_ms).toFixed(1).padStart(5)}%  ${d.label}${d.dispatches > 1 ? ` ×${d.dispatches}` : ''}${rate ? `  ${rate}` : ''}`;
  });
  const rest = p.dispatches.length > top ? [`  ... ${p.dispatches.length - top} more dispatches`] : [];
  return [`${title}: ${p.total_ms.toFixed(2)} ms per step over ${p.dispatches.length} dispatches (mean of ${p.runs} runs; ${how})`, ...rows, ...rest].join('\n');
}

/** The training step's table, then one line per other program with its slowest dispatches. */
export function formatTrialProfile(title: string, p: TrialProfile, top = 20): string {
  const others = Object.entries(p.programs).filter(([n]) => n !== 'train_step').map(([n, q]) => {
    const slow = q.dispatches.slice(0, 3).map((d) => `${d.label} ${d.ms.toFixed(3)} ms`).join(', ');
    return `  ${n}: ${q.total_ms.toFixed(2)} ms over ${q.dispatches.length} dispatches${slow ? ` (slowest: ${slow})` : ''}`;
  });
  return [formatDispatchProfile(title, p, top), ...(others.length ? ['  the other programs (every dispatch of each in profile.json):', ...others] : [])].join('\n');
}
