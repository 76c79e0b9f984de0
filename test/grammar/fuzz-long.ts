// `npm run fuzz`: the front-end fuzzer of test/grammar/fuzzer.ts at length, then the real CLI
// (`moec check`, a child process per mutant) on a few hundred mutants, each in a copy of
// pipelines/ so imports resolve. Prints the figures; exit status 1 when anything was found.
//   npm run fuzz [-- --mutants 30000 --cli 300 --seed 7 --jobs 2]
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { rng } from '../../compiler/reference/random.js';
import { pipelineFiles, pipelinesDir, repoRoot } from '../compiler/frontend/helpers.js';
import { fuzzFrontEnd, mutate, type Finding } from './fuzzer.js';

const { values } = parseArgs({
  options: { mutants: { type: 'string', default: '30000' }, cli: { type: 'string', default: '300' }, seed: { type: 'string', default: '7' }, jobs: { type: 'string', default: '2' } },
});
const seed = Number(values.seed);
const files = pipelineFiles();

const fe = fuzzFrontEnd(files, Number(values.mutants), seed, { timeBoundMs: 5000, maxFindings: 50, longLists: true });
console.log(`front end: ${fe.mutants} mutants of ${files.length} pipelines in ${fe.seconds.toFixed(1)} s (${(fe.mutants / fe.seconds).toFixed(0)}/s), ${fe.withErrors} with errors, slowest ${fe.slowest.toFixed(0)} ms, ${fe.findings.length} findings`);

const moec = path.join(repoRoot, 'dist/runtime/cli/moec.js');
const STACK = /\n\s+at .+:\d+:\d+|\bat (file|node):/;
const located = /^\S+:\d+:\d+ (error|warning): /;

function check(file: string): Promise<{ code: number | null; signal: string | null; err: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [moec, 'check', file], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (e, _out, err) => {
      const code = e ? ((e as { code?: number }).code ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, signal: e ? ((e as { signal?: string }).signal ?? null) : null, err, ms: performance.now() - t0 });
    });
  });
}

const cliCount = Number(values.cli);
const jobs = Math.max(1, Number(values.jobs));
const cliFindings: Finding[] = [];
let cliDone = 0;
let cliSlowest = 0;
const t0 = performance.now();
const work = Array.from({ length: cliCount }, (_, i) => i);
const r = rng(seed ^ 0x5eed);
const mutants = work.map((i) => { const f = files[i % files.length]!; return { name: path.basename(f), text: mutate(readFileSync(f, 'utf8'), r, { longLists: true }) }; });
await Promise.all(Array.from({ length: jobs }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'moec-fuzz-'));
  try {
    cpSync(pipelinesDir, dir, { recursive: true });
    for (;;) {
      const i = work.shift();
      if (i === undefined) break;
      const { name, text } = mutants[i]!;
      const target = path.join(dir, name);
      const original = readFileSync(path.join(pipelinesDir, name), 'utf8');
      writeFileSync(target, text);
      const res = await check(target);
      writeFileSync(target, original);
      cliDone++;
      cliSlowest = Math.max(cliSlowest, res.ms);
      const problems: string[] = [];
      if (res.code !== 0 && res.code !== 1) problems.push(`exit status ${res.code ?? res.signal}`);
      if (STACK.test(res.err)) problems.push('a stack trace on stderr');
      if (res.err.includes('internal error')) problems.push('an internal error');
      for (const line of res.err.split('\n')) {
        if (/\b(error|warning): /.test(line) && !line.startsWith(' ') && !located.test(line)) problems.push(`a diagnostic without file:line:col: ${line.slice(0, 200)}`);
      }
      for (const problem of problems) cliFindings.push({ file: name, mutant: text, problem: `${problem}\n${res.err.slice(0, 1500)}` });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}));
const cliSeconds = (performance.now() - t0) / 1000;
console.log(`cli: ${cliDone} mutants through \`moec check\` in ${cliSeconds.toFixed(1)} s (${jobs} at a time), slowest ${(cliSlowest / 1000).toFixed(1)} s, ${cliFindings.length} findings`);

const all = [...fe.findings, ...cliFindings];
for (const f of all.slice(0, 10)) console.log(`\n${f.problem}\n--- mutation of ${f.file}:\n${f.mutant.slice(0, 1500)}`);
process.exitCode = all.length ? 1 : 0;
