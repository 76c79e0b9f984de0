// The sbatch script of a job array: one task per trial of a trial list. The batch shell runs moec
// in the background so it can pass signals on: Slurm sends USR1 to the shell only (--signal=B:),
// shortly before the time limit; moec finishes its step, writes a checkpoint and exits with
// EXIT_STOPPED, and the shell requeues the task, which resumes from that checkpoint. scancel and
// `scontrol requeue` send TERM to every process of the task, moec included; it stops the same way.

/** moec slurm-task's exit status when it stopped on a signal with a checkpoint (EX_TEMPFAIL). */
export const EXIT_STOPPED = 75;

export interface ScriptOptions {
  jobName: string;
  /** Number of array tasks (trials in the list). */
  tasks: number;
  /** Tasks running at once (%M); undefined: as many as Slurm will. */
  maxParallel?: number;
  partition?: string;
  /** Time limit per task, HH:MM:SS (or D-HH:MM:SS). */
  time?: string;
  /** Seconds before the time limit at which USR1 is sent. */
  signalSeconds: number;
  /** Directory for the tasks' stdout/stderr (slurm-%A_%a.out). */
  logDir: string;
  /** Working directory of each task. */
  workdir: string;
  /** The command that starts moec: node and the CLI entry, absolute. */
  moec: string[];
  /** The trial list the tasks read. */
  list: string;
  /** Extra `#SBATCH` lines, verbatim (e.g. --gres=gpu:1). */
  extra?: string[];
}

/** Single-quotes a word for bash. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\-./=:,@%+]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function renderScript(o: ScriptOptions): string {
  const array = `0-${o.tasks - 1}${o.maxParallel ? `%${o.maxParallel}` : ''}`;
  const sb = [
    `--job-name=${o.jobName}`,
    `--array=${array}`,
    '--requeue',
    '--open-mode=append',
    `--signal=B:USR1@${o.signalSeconds}`,
    `--output=${o.logDir}/%A_%a.out`,
    ...(o.partition ? [`--partition=${o.partition}`] : []),
    ...(o.time ? [`--time=${o.time}`] : []),
    '--nodes=1',
    '--ntasks=1',
    ...(o.extra ?? []),
  ];
  return `#!/bin/bash
${sb.map((l) => `#SBATCH ${l}`).join('\n')}
# Written by moec run --slurm: array task i trains trial i of the list below into the run store,
# resuming from the trial's latest checkpoint when the task is requeued.
set -u
cd ${shellQuote(o.workdir)}
echo "moec: array task \${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID} (job \${SLURM_JOB_ID}, restart \${SLURM_RESTART_COUNT:-0}) on $(hostname) at $(date -u +%FT%TZ)"
${o.moec.map(shellQuote).join(' ')} slurm-task ${shellQuote(o.list)} "$SLURM_ARRAY_TASK_ID" &
pid=$!
near_limit=0
trap 'near_limit=1; kill -USR1 "$pid" 2>/dev/null' USR1
trap 'kill -TERM "$pid" 2>/dev/null' TERM
# wait returns early when a trapped signal arrives: wait again until moec has exited.
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
wait "$pid"
rc=$?
if [ "$rc" -eq ${EXIT_STOPPED} ] && [ "$near_limit" -eq 1 ]; then
  echo "moec: checkpointed before the time limit; requeueing \${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}"
  scontrol requeue "\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}"
fi
exit "$rc"
`;
}
