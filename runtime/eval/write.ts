// The files `moec eval` writes beside a sweep's report: eval/NAME.json (everything), NAME.csv (one
// row per trial), NAME-experts.csv (assignments per trial, layer, label value and expert) and
// NAME.md (a report section: the perplexity table and the assignment shares per layer).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../store/atomic.js';
import type { TrialEval } from './evaluate.js';

const csvCell = (v: unknown) => {
  const s = String(v ?? '');
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
const csv = (rows: unknown[][]) => rows.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';

/** A file name from what the user typed for --data. */
export function evalName(label: string): string {
  return path.basename(label).replace(/\.(moe|txt|jsonl|parquet)(?=:|$)/, '').replace(/[^A-Za-z0-9._=-]+/g, '_').replace(/^[._]+/, '') || 'data';
}

export function writeEval(dir: string, name: string, o: { data: string; by: string | null; results: TrialEval[]; skipped: { trial: string; why: string }[] }): string[] {
  mkdirSync(path.join(dir, 'eval'), { recursive: true });
  const base = path.join(dir, 'eval', name);
  const files = [`${base}.json`, `${base}.csv`, `${base}-experts.csv`, `${base}.md`];
  const keys = [...new Set(o.results.flatMap((r) => Object.keys(r.params)))].sort();
  writeJsonAtomic(files[0]!, { data: o.data, by: o.by, written: new Date().toISOString(), trials: o.results, skipped: o.skipped });
  writeFileAtomic(files[1]!, csv([
    ['trial', 'name', ...keys, 'seed', 'step', 'data', 'split', 'tokens', 'loss', 'ppl'],
    ...o.results.map((r) => [r.trial, r.name, ...keys.map((k) => r.params[k] ?? ''), r.seed, r.step, r.data, r.split, r.tokens, r.loss, r.ppl]),
  ]));
  const ex: unknown[][] = [['trial', 'layer', o.by ?? 'label', 'expert', 'assignments', 'share']];
  for (const r of o.results) for (const l of r.experts) for (const [v, counts] of Object.entries(l.counts)) {
    const total = counts.reduce((a, b) => a + b, 0);
    counts.forEach((c, e) => ex.push([r.trial, l.layer, v, e, c, total > 0 ? c / total : 0]));
  }
  writeFileAtomic(files[2]!, csv(ex));
  const md: string[] = [`## Evaluation on ${o.data}${o.by ? `, experts by ${o.by}` : ''}`, ''];
  md.push('| trial | name | step | split | tokens | loss | perplexity |', '|---|---|---:|---|---:|---:|---:|');
  for (const r of o.results) md.push(`| ${r.trial} | ${r.name} | ${r.step} | ${r.split} | ${r.tokens} | ${r.loss.toFixed(4)} | ${r.ppl.toFixed(2)} |`);
  for (const s of o.skipped) md.push(`| ${s.trial} | not evaluated: ${s.why} | | | | | |`);
  for (const r of o.results) for (const l of r.experts) {
    const values = Object.keys(l.counts);
    if (!values.length) continue;
    const E = l.counts[values[0]!]!.length;
    md.push('', `Share of ${o.by} values' assignments per expert, trial ${r.trial} (${r.name}), layer ${l.layer}:`, '');
    md.push(`| ${o.by} | ${Array.from({ length: E }, (_, e) => `expert ${e}`).join(' | ')} |`, `|---|${'---:|'.repeat(E)}`);
    for (const v of values) {
      const c = l.counts[v]!;
      const total = c.reduce((a, b) => a + b, 0);
      md.push(`| ${v} | ${c.map((x) => (total > 0 ? (x / total).toFixed(3) : '0')).join(' | ')} |`);
    }
  }
  writeFileAtomic(files[3]!, md.join('\n') + '\n');
  return files;
}
