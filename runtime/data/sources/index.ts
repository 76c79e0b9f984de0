import { brown } from './brown.js';
import { fortunes } from './fortunes.js';
import { libreofficeHelp } from './libreoffice-help.js';
import type { CorpusName } from '../../../compiler/frontend/corpora.js';
import type { BuiltinSource } from './part.js';
import { mobyDick, sotu } from './stdlib.js';
import { udhr } from './udhr.js';

export type { BuiltinSource, CorpusPart } from './part.js';

/** The built-in corpora by source name (the names `source NAME` takes in .moe). */
export const BUILTIN: Record<string, BuiltinSource> = { 'libreoffice-help': libreofficeHelp, brown, fortunes, sotu, 'moby-dick': mobyDick, udhr } satisfies Record<CorpusName, BuiltinSource>;
