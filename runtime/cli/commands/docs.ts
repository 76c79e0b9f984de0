import { generateLanguageDoc } from '../../../compiler/frontend/docs.js';
import type { Command } from '../command.js';

export const docsCommand: Command = {
  name: 'docs',
  summary: 'print the .moe language reference (docs/LANGUAGE.md), generated from the schema',
  usage: `usage: moec docs

Prints the language reference generated from the JSON Schema of a pipeline
(compiler/frontend/schema.ts). Regenerate the checked-in copy with:
  moec docs > docs/LANGUAGE.md`,
  async run() {
    process.stdout.write(generateLanguageDoc());
    return 0;
  },
};
