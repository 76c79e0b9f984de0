import { parseArgs } from 'node:util';
import path from 'node:path';
import { UserError } from '../../../grammar/user-error.js';
import { parseRedisUrl, scrubArgv } from '../../queue/redis-url.js';
import { DEFAULT_TRANSFER_LIMIT } from '../../queue/transfer.js';
import { runWorker } from '../../queue/worker.js';
import { adapterOption } from '../adapter-flag.js';
import type { Command } from '../command.js';

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${flag} '${text}' is not a positive whole number`, { where: flag });
  return n;
}

export const workerCommand: Command = {
  name: 'worker',
  summary: 'train trials that `moec run --queue` put on a Redis queue, until stopped',
  usage: `usage: moec worker --queue redis://[:PASSWORD@]HOST:PORT [--adapter NAME] [--concurrency N] [--out DIR] [--transfer]

Takes trials from the queue, one at a time (N with --concurrency), compiles and validates each
trial's .moe configuration itself and trains it in a child process on this machine's GPU. Where
the coordinator's run directory is visible at the same path (a shared filesystem), the trial is
written there; otherwise into --out here, and its records and final checkpoint are sent back
through the queue. Ctrl-C: running trials write a checkpoint and go back to the queue.
  --queue URL        redis:// or rediss:// (TLS; MOEC_REDIS_CA=FILE names a private CA)
  --adapter NAME     the GPU to use (see moec doctor)
  --concurrency N    trials at once on this machine (default 1)
  --out DIR          where trials go without a shared run directory (default runs)
  --transfer         send results through the queue even where the run directory is shared
  --max-transfer-mb M  files larger than this stay here, named in the trial (default ${DEFAULT_TRANSFER_LIMIT / 2 ** 20})
  --lock-seconds S   a worker silent this long is presumed dead and its trial put back (default 30)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        queue: { type: 'string' }, concurrency: { type: 'string', default: '1' }, out: { type: 'string', default: 'runs' }, transfer: { type: 'boolean' },
        'max-transfer-mb': { type: 'string' }, 'lock-seconds': { type: 'string', default: '30' }, ...adapterOption,
      },
    });
    if (positionals.length) { console.error(this.usage); return 1; }
    if (!values.queue) throw new UserError('no queue given', { where: '--queue', hint: 'name the Redis that moec run --queue uses, e.g. --queue redis://HOST:6379' });
    const target = parseRedisUrl(values.queue);
    scrubArgv(values.queue, target);
    const mb = values['max-transfer-mb'] === undefined ? DEFAULT_TRANSFER_LIMIT / 2 ** 20 : Number(values['max-transfer-mb']);
    if (!(mb >= 0)) throw new UserError(`--max-transfer-mb '${values['max-transfer-mb']}' is not a number of MiB`, { where: '--max-transfer-mb' });
    const stop = { requested: false };
    const onSignal = () => {
      if (stop.requested) process.exit(130);
      stop.requested = true;
      console.error('stopping: running trials write a checkpoint and go back to the queue; Ctrl-C again quits at once');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await runWorker({
        target, concurrency: positive('--concurrency', values.concurrency!), out: path.resolve(values.out!), transfer: Boolean(values.transfer),
        transferLimit: Math.floor(mb * 2 ** 20), lockMs: positive('--lock-seconds', values['lock-seconds']!) * 1000,
        log: (line) => console.error(`${new Date().toISOString().slice(11, 19)} ${line}`), stop,
        ...(values.adapter ? { adapter: values.adapter } : {}),
      });
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
