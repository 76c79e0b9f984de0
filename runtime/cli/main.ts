import { UserError } from '../../grammar/user-error.js';
import { DiskFullError, isDiskFull } from '../store/atomic.js';
import type { Command } from './command.js';
import { doctorCommand } from './commands/doctor.js';
import { checkCommand } from './commands/check.js';
import { expandCommand } from './commands/expand.js';
import { fmtCommand } from './commands/fmt.js';
import { docsCommand } from './commands/docs.js';
import { compileCommand } from './commands/compile.js';
import { runCommand } from './commands/run.js';
import { dataCommand } from './commands/data.js';
import { reportCommand } from './commands/report.js';
import { lsCommand } from './commands/ls.js';
import { showCommand } from './commands/show.js';
import { workerCommand } from './commands/worker.js';
import { statusCommand } from './commands/status.js';
import { slurmTaskCommand } from './commands/slurm-task.js';
import { sampleCommand } from './commands/sample.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';

// The registry of sub-commands; each lives in commands/<name>.ts.
const commands: Command[] = [doctorCommand, checkCommand, expandCommand, compileCommand, runCommand, fmtCommand, docsCommand, dataCommand, reportCommand, lsCommand, showCommand, statusCommand, sampleCommand, evalCommand, exportCommand, workerCommand, slurmTaskCommand];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `usage: moec <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n'moec <command> --help' shows a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`error: unknown command '${name}'\n\n${usage()}`);
    return 1;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UserError) {
      console.error(err.format());
      return 1;
    }
    // A full disk anywhere (a report, the data cache): the path, never a stack trace.
    if (isDiskFull(err)) {
      console.error(new DiskFullError((err as { path?: string }).path ?? 'an unnamed file').format());
      return 1;
    }
    // parseArgs reports bad flags as TypeErrors with a code; they are user mistakes too.
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      console.error(`error: ${(err as Error).message}\n\n${command.usage}`);
      return 1;
    }
    console.error(`internal error in 'moec ${name}': ${(err as Error).stack ?? String(err)}`);
    console.error('This is a bug in moec; please report it with the command that caused it.');
    return 70;
  }
}

