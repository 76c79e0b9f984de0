import { parseArgs } from 'node:util';
import { squeueSource } from '../../slurm/squeue-source.js';
import { formatStatus, sweepStatus } from '../../status/sweep-status.js';
import type { Command } from '../command.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'which trials of a run are done, running (where), queued, failed (why), retried',
  usage: `usage: moec status runs/SWEEP [--json]

Reads the run store (each trial's status.json, attempts.jsonl, metrics) and, for trials submitted
with --slurm, asks squeue about their array tasks: queued, running on which node, or lost (the task
left the queue while the trial was running, e.g. killed). Shows the step of each trial, how many
processes took it and how often Slurm requeued it, and why a trial failed.
  --json   the same as JSON`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } });
    if (positionals.length !== 1) { console.error(this.usage); return 1; }
    const s = await sweepStatus(positionals[0]!, [squeueSource]);
    if (values.json) {
      console.log(JSON.stringify({ ...s, trials: s.trials.map(({ lastStart: _l, lastEnded: _e, ...t }) => t) }, null, 2));
    } else console.log(formatStatus(s));
    return 0;
  },
};
