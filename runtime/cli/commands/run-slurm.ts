// `moec run FILE --slurm`: submit (or --dry-run print) the job array, then follow it in the live
// view until every trial is done or failed or no task is left, and write the report.
import path from 'node:path';
import type { Trial } from '../../../compiler/frontend/index.js';
import { UserError } from '../../../grammar/user-error.js';
import { writeReport } from '../../report/report.js';
import { followSlurm } from '../../slurm/follow.js';
import { submitSlurm, type SlurmSubmitOptions } from '../../slurm/submit.js';
import { createSweepView, wantsLiveView } from '../../ui/sweep-view.js';

/** What submitSlurm takes, with --max-parallel still as the flag's text (checked here). */
export type RunOnSlurmOptions = Omit<SlurmSubmitOptions, 'maxParallel'> & {
  maxParallel: string | undefined;
  /** Poll interval of the follower (tests shorten it). */
  pollMs?: number;
};

export async function runOnSlurm(o: RunOnSlurmOptions): Promise<number> {
  let maxParallel: number | undefined;
  if (o.maxParallel !== undefined) {
    maxParallel = Number(o.maxParallel);
    if (!Number.isInteger(maxParallel) || maxParallel < 1) throw new UserError(`--max-parallel '${o.maxParallel}' is not a positive whole number`, { where: '--max-parallel' });
  }
  const { maxParallel: _flag, pollMs: _poll, ...rest } = o;
  const sub = submitSlurm({ ...rest, ...(maxParallel ? { maxParallel } : {}) });
  const rel = path.relative(process.cwd(), sub.runDir) || '.';
  const skipped = [sub.done.length ? `${sub.done.length} done already` : '', sub.held.length ? `${sub.held.length} held by tasks already queued` : ''].filter(Boolean).join(', ');
  if (o.dryRun) {
    if (sub.script) {
      process.stdout.write(sub.script);
      console.error(`dry run: would write ${path.relative(process.cwd(), sub.scriptPath!)} and its trial list and submit it with sbatch${skipped ? ` (${skipped})` : ''}`);
    } else console.error(`dry run: nothing to submit (${skipped})`);
    return 0;
  }
  if (sub.arrayJobId) console.error(`submitted array ${sub.arrayJobId}: ${o.trials.length - sub.done.length - sub.held.length} tasks (${path.relative(process.cwd(), sub.scriptPath!)})${skipped ? `; ${skipped}` : ''}`);
  else console.error(`nothing to submit (${skipped}); following ${rel}`);

  const stop = { requested: false };
  const view = createSweepView({ tty: wantsLiveView(process.stdout), stdout: process.stdout, stderr: process.stderr });
  const onSigint = () => {
    if (stop.requested) process.exit(130);
    stop.requested = true;
    view.message(`stopped following; the Slurm tasks go on. Watch them with: moec status ${rel}`);
  };
  process.on('SIGINT', onSigint);
  let r;
  try {
    r = await followSlurm({ runDir: sub.runDir, trials: o.trials, adapter: 'Slurm array tasks', listener: view.listener, stop, message: (m) => view.message(m), alreadyDone: sub.done, ...(o.pollMs ? { pollMs: o.pollMs } : {}) });
  } finally {
    await view.done();
    process.off('SIGINT', onSigint);
  }
  if (r.detached) {
    console.log(`detached: ${r.done.length} done, ${r.failed.length} failed, ${r.unfinished.length} not finished; 'moec status ${rel}' shows them, 'moec run ${o.file} --slurm --resume' follows again`);
    return 0;
  }
  let report: string | null = null;
  let reportError: string | undefined;
  try {
    report = (await writeReport(sub.runDir)).files.markdown;
  } catch (e) {
    reportError = `${(e as Error).message}; the runs are intact: retry with 'moec report ${rel}'`;
  }
  console.log(`${r.done.length} done, ${r.failed.length} failed, ${r.unfinished.length} not finished; report: ${report ?? 'not written'}`);
  if (r.unfinished.length) console.error(`no Slurm task is left for ${r.unfinished.join(', ')}: see 'moec status ${rel}', then 'moec run ${o.file} --slurm --resume' submits them again`);
  if (reportError) console.error(`error: the report could not be written: ${reportError}`);
  return r.failed.length || r.unfinished.length || reportError ? 1 : 0;
}
