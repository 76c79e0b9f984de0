// docs/LANGUAGE.md, generated from the JSON Schema (compiler/frontend/schema.ts): the
// reference of every key is written once, in the schema. `moec docs` prints it;
// test/compiler/frontend/docs.test.ts fails when the checked-in file is stale.
import { MAX_NESTING } from '../../grammar/parse.js';
import { MAX_TRIALS } from './sweep.js';
import { blockKeys, dataSchema, evaluateSchema, keyName, modelSchema, sweepSchema, trainSchema, type JsonSchema } from './schema.js';

function typeText(s: JsonSchema): string {
  if (s['x-syntax']) return s['x-syntax'];
  const t = Array.isArray(s.type) ? s.type.filter((x) => x !== 'null') : [s.type ?? ''];
  if (t[0] === 'array') return '[...]';
  if (t[0] === 'integer') return 'INTEGER';
  if (t[0] === 'number') return 'NUMBER';
  if (t[0] === 'string') return 'NAME';
  if (t[0] === 'boolean') return 'true | false';
  return t.join(' | ');
}

function bounds(s: JsonSchema): string {
  const b: string[] = [];
  if (s.minimum !== undefined) b.push(`>= ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) b.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined) b.push(`<= ${s.maximum}`);
  if (s.exclusiveMaximum !== undefined) b.push(`< ${s.exclusiveMaximum}`);
  const t = Array.isArray(s.type) ? s.type : [s.type];
  if (t.includes('integer') && b.length) b.unshift('whole number');
  const items = s.items && s.type === 'array' ? bounds(s.items) : '';
  if (items) b.push(`each ${items}`);
  return b.join(', ');
}

function defaultText(s: JsonSchema): string {
  if (s['x-default-text']) return s['x-default-text'];
  if (s.default === undefined) return '';
  if (s['x-form'] === 'block') return s.default === null ? 'absent' : 'see below';
  return `\`${JSON.stringify(s.default)}\``;
}

const esc = (t: string) => t.replace(/\|/g, '\\|');

function table(s: JsonSchema, prefix: string, out: string[], nested: [string, JsonSchema][]): void {
  out.push('| key | value | default | range | meaning |', '|---|---|---|---|---|');
  for (const [prop, ps] of Object.entries(s.properties ?? {})) {
    if (ps['x-derived']) continue;
    const key = keyName(prop);
    if (ps['x-form'] === 'block') nested.push([`${prefix}.${key}`, ps]);
    const applies = ps['x-applies'] ? ` (source ${ps['x-applies'].join(', ')} only)` : '';
    out.push(`| \`${key}\` | \`${esc(typeText(ps))}\` | ${esc(defaultText(ps))} | ${esc(bounds(ps))} | ${esc(ps.description ?? '')}${applies} |`);
  }
  const derived = Object.entries(s.properties ?? {}).filter(([, p]) => p['x-derived']);
  if (derived.length) {
    out.push('', `Derived in the resolved pipeline (not written): ${derived.map(([k, p]) => `\`${k}\` (${p.description})`).join('; ')}.`);
  }
}

function section(title: string, s: JsonSchema, prefix: string, out: string[]): void {
  out.push(`## ${title}`, '', s.description ?? '', '');
  const nested: [string, JsonSchema][] = [];
  table(s, prefix, out, nested);
  out.push('');
  for (const [p, ns] of nested) {
    out.push(`### \`${p}\` block`, '', ns.description ?? '', '');
    table(ns, p, out, []);
    out.push('');
  }
}

export function generateLanguageDoc(): string {
  const out: string[] = [
    '# The .moe language',
    '',
    '<!-- Generated from compiler/frontend/schema.ts by `moec docs > docs/LANGUAGE.md`. Do not edit by hand. -->',
    '',
    'A `.moe` file describes data, a model, training, evaluation and a sweep of trials.',
    '',
    '## Syntax',
    '',
    '- A file is a list of `import "other.moe"` lines and blocks: `data NAME { ... }`, `model NAME { ... }`, `train { ... }`, `evaluate { ... }`, `sweep { ... }`, `preset NAME { ... }`.',
    '- Inside a block, one setting per line: `key value`. Several settings on one line are separated by `;`. Blocks nest (`moe { ... }`).',
    '- Values: numbers (`256`, `6e-4`, `0.1`), percentages (`5%` is 0.05), multipliers (`4x`), names (`token`, `softmax-topk`), dotted paths (`wiki.valid`), strings (`"data/x.jsonl"`), lists (`[en, de]`, newlines allowed inside), calls (`label(language)`, `cosine(dim 32)`, `sequence(prefix 32)`).',
    '- `#` starts a comment. `moec fmt` rewrites a file in the canonical layout and keeps comments.',
    '- `import "base.moe"` (relative to the importing file) brings in every block of that file. A block of the same name in the importing file overrides the imported one key by key; `model big extends mini { layers 8 }` copies `mini` and overrides keys. Defining the same name twice in one file is an error.',
    '- `preset NAME { PATH VALUE ... }` holds overrides applied with `moec check|expand|run --preset NAME`, e.g. `preset small { train.steps 200  model.layers 2 }` (on one line, each dotted path after a value starts the next setting; nested blocks work too: `preset small { train { steps 200 } }`). Paths: `train.KEY`, `evaluate.KEY`, `model.KEY` (the trained model) or `model.NAME.KEY`, `data.NAME.KEY` or `data.KEY` (every data set).',
    '- Paths (`import "..."`, `source text|folder|jsonl|parquet "..."`) are relative to the .moe file that names them, not to the current directory, so a pipeline runs the same from anywhere. Absolute paths and `..` are allowed (a shared corpus on a cluster\'s scratch disk, a `../common.moe` beside the study), but `moec check` warns, at the path, when one leaves the pipeline\'s folder: such a pipeline is not self-contained, and whatever it names is read and tokenised into the cache. A data source must be a regular file (a folder for `source folder`), not a device or a pipe; an import must be a `.moe` file, a link to anything else is refused.',
    `- Nesting of blocks, lists and calls is limited to ${MAX_NESTING} levels; a number must be finite and within the range its key states below (\`moec check\` says which).`,
    '- Each pipeline in pipelines/ has a `small` preset (minutes on a software GPU) and a `full` preset (the study\'s scale).',
    '',
    '## Resolution',
    '',
    'Defaults are filled from the tables below, percentages and multipliers normalised (`ffn 4x` becomes `4 * width`, `warmup 5%` becomes 5% of `steps`), references checked (`train.data`, `train.model`, data sets and labels named by `evaluate`, the label of a label router), and the result validated against the JSON Schema in `compiler/frontend/schema.ts`, then checked for consistency: `heads` divides `width`, `top` is at most `experts`, `every` is at most `layers`, and so on.',
    '',
  ];
  section('`data NAME { ... }`', dataSchema, 'data', out);
  section('`model NAME { ... }`', modelSchema, 'model', out);
  section('`train { ... }`', trainSchema, 'train', out);
  section('`evaluate { ... }`', evaluateSchema, 'evaluate', out);
  out.push('## `sweep { ... }`', '', sweepSchema.description ?? '', '');
  out.push('| statement | written | meaning |', '|---|---|---|');
  const sp = sweepSchema.properties!;
  out.push(`| product | \`${esc('PATH in [V1, V2, ...]')}\` | Every value, times every other dimension. ${esc(sp['dimensions']!.items!.properties!['params']!.items!.properties!['path']!.description ?? '')} |`);
  out.push(`| conditional | \`${esc('PATH in [...] when PATH ==|!= VALUE')}\` | ${esc(sp['dimensions']!.items!.properties!['when']!.description ?? '')} E.g. \`model.moe.zloss in [0, 0.001] when model.moe.capacity != dropless\`. |`);
  out.push(`| zip | \`zip { PATH in [...]  PATH in [...] }\` | ${esc(sp['dimensions']!.items!.properties!['kind']!.description ?? '')} The lists must have the same length. |`);
  out.push(`| seeds | \`${esc(sp['seeds']!['x-syntax'] ?? '')}\` | ${esc(sp['seeds']!.description ?? '')} |`);
  out.push(`| baseline | \`${esc(sp['baselines']!['x-syntax'] ?? '')}\` | ${esc(sp['baselines']!.description ?? '')} |`);
  out.push(`| compare | \`${esc(sp['comparisons']!['x-syntax'] ?? '')}\` | ${esc(sp['comparisons']!.description ?? '')} E.g. \`compare model.moe.unit against token by model.moe.top\`. |`);
  out.push('', 'Each trial has a stable id (a short hash of its resolved configuration without the settings left at their default: the same file gives the same ids, and keys added to the language later do not change them) and a readable name such as `unit=sequence,top=2,experts=8,seed=1`. `moec expand FILE` lists them.', '');
  out.push(`A file expands to at most ${MAX_TRIALS} trials, seeds included: a sweep past that is refused at the dimension (or the seeds) that takes it over, before its trials are resolved.`, '');
  out.push(`Keys of each block, for quick reference: data: ${blockKeys(dataSchema).join(', ')}; model: ${blockKeys(modelSchema).join(', ')}; moe: ${blockKeys(modelSchema.properties!['moe']!).join(', ')}; train: ${blockKeys(trainSchema).join(', ')}; evaluate: ${blockKeys(evaluateSchema).join(', ')}.`, '');
  return out.join('\n');
}
