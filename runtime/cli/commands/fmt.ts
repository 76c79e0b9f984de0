import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderDiagnostic } from '../../../grammar/diagnostics.js';
import { formatFile } from '../../../grammar/format.js';
import { parseSource } from '../../../grammar/parse.js';
import { UserError } from '../../../grammar/user-error.js';
import { replaceUserFile } from '../../store/atomic.js';
import type { Command } from '../command.js';

export const fmtCommand: Command = {
  name: 'fmt',
  summary: 'rewrite .moe files in the canonical layout (comments kept)',
  usage: `usage: moec fmt FILE... [--check] [--stdout]

Rewrites each file in place in the canonical layout: two-space indentation, one setting per
line, single spaces, [a, b] lists; comments kept. A file with syntax errors is left alone.
  --check   change nothing; exit 1 if a file is not formatted
  --stdout  print the formatted text instead of writing the file`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { check: { type: 'boolean' }, stdout: { type: 'boolean' } } });
    if (positionals.length === 0) { console.error(this.usage); return 1; }
    let status = 0;
    for (const file of positionals) {
      let text: string;
      try { text = readFileSync(file, 'utf8'); } catch { throw new UserError(`cannot read '${file}'`); }
      const { ast, diagnostics } = parseSource(text, file);
      if (diagnostics.length) {
        for (const d of diagnostics) console.error(renderDiagnostic(d, () => text, Boolean(process.stderr.isTTY)));
        console.error(`${file}: not formatted (syntax errors)`);
        status = 1;
        continue;
      }
      const out = formatFile(ast);
      if (values.stdout) process.stdout.write(out);
      else if (values.check) {
        if (out !== text) { console.log(`${file}: not formatted`); status = 1; }
      } else if (out !== text) {
        replaceUserFile(file, out); // a temp file renamed over it: a full disk cannot cut the source short
        console.log(`formatted ${file}`);
      }
    }
    return status;
  },
};
