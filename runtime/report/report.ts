// `moec report DIR` and the end of `moec run`: report.md with the tables and figures of a sweep,
// the tables as CSV and JSON, and every figure as SVG and PNG under figures/.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../store/atomic.js';
import { effectsSection, type EffectsResult } from './effects-section.js';
import { perSeedEntropy, perSeedJsd, specialisation, specialisationTable, topTokensSection } from './specialisation.js';
import { diagnosticsSection } from './diagnostics.js';
import { assignment, assignmentSpec, loadOverTraining, loadSpec, perplexityCurves, perplexitySpec } from './charts.js';
import { loadRun, type RunData, type TrialData } from './load.js';
import { writeChart } from './render.js';
import { reportHtml, type HtmlFigure } from './html.js';
import { configLabels, type ConfigLabel } from './labels.js';
import { configName, groupRows, sweptPaths, trialRow, type GroupRow, type TrialRow } from './summary.js';
import { classifies, duration, groupCsv, groupTableMd, markdownTable, trialCsv, trialTableMd } from './tables.js';

export interface ReportFiles {
  markdown: string;
  /** One self-contained page with the tables and the figures drawn live (html.ts). */
  html: string;
  csv: string;
  trialsCsv: string;
  json: string;
  /** Every effect with its interval (effects.csv). */
  effectsCsv: string;
  /** Every figure, SVG and PNG. */
  figures: string[];
}

export interface Report {
  files: ReportFiles;
  trials: TrialRow[];
  groups: GroupRow[];
  effects: EffectsResult['json'];
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9.]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'base';

export async function writeReport(dir: string): Promise<Report> {
  const run = loadRun(dir);
  const trials = run.trials.map(trialRow);
  const groups = groupRows(trials);
  const paths = sweptPaths(trials);
  const figDir = path.join(dir, 'figures');
  // Figures are derived data: start clean so none is left from configurations no longer in the run.
  rmSync(figDir, { recursive: true, force: true });
  mkdirSync(figDir, { recursive: true });
  const figures: string[] = [];
  const md: string[] = [];
  const i = run.index;
  const averages = [...new Set(trials.map((t) => t.average))];
  const seedCounts = [...new Set(groups.map((g) => g.seeds))];
  const done = trials.filter((t) => t.status === 'done').length;
  const failed = trials.filter((t) => t.status === 'failed');
  const unfinished = trials.filter((t) => t.status !== 'done' && t.status !== 'failed');

  md.push(`# ${i.sweep}`, '');
  md.push(`Sweep \`${i.file}\`${i.preset ? ` (preset \`${i.preset}\`)` : ''} on ${i.adapter}; run started ${i.created}, last written ${i.updated}.`, '');
  md.push(`${trials.length} trials in ${groups.length} configuration${groups.length === 1 ? '' : 's'}, ${seedCounts.join(' or ')} seed${seedCounts.length === 1 && seedCounts[0] === 1 ? '' : 's'} each: ${done} done, ${failed.length} failed, ${unfinished.length} not finished.`, '');

  const soft = run.trials.filter((t) => t.record?.config.model.moe?.dispatch === 'soft').map((t) => t.name);
  if (soft.length) {
    md.push(`**Soft MoE is not causal:** each token's output mixes slots computed from every token of its sequence, later ones included, so the validation perplexity of ${soft.length === run.trials.length ? 'these trials' : `${soft.join(', ')}`} is not a valid causal language-model number.`, '');
  }
  const moved = run.trials.filter((t) => t.resumes.length);
  if (moved.length) {
    md.push(`**Resumed on other kernels:** ${moved.map((t) => `${t.name} (at step ${t.resumes.map((r) => `${r.step}: ${r.lowering} on ${r.adapter}`).join(', ')})`).join('; ')}. Their curves join runs of different kernels, so they will not equal an uninterrupted run's bit for bit.`, '');
  }
  const cls = classifies(trials);
  const rel = (p: string) => path.relative(dir, p).split(path.sep).join('/');
  // report.md links each figure's PNG; report.html draws it live from the same spec in its place.
  const live: HtmlFigure[] = [];
  const figure = async (spec: Parameters<typeof writeChart>[0], name: string, alt: string) => {
    const f = await writeChart(spec, path.join(figDir, name));
    figures.push(f.svg, f.png);
    const marker = `<!--moec-figure-${live.length}-->`;
    live.push({ marker, spec, alt });
    md.push(marker, `![${alt}](${rel(f.png)})`, '', `[SVG](${rel(f.svg)})`, '');
  };
  md.push(cls ? '## Test accuracy and dispatch entropy' : '## Validation perplexity', '');
  md.push(groupTableMd(groups, paths, averages.length === 1 ? averages[0]! : NaN).replace('mean of last NaN', 'mean of last M'), '');
  if (cls) md.push('Dispatch entropy is Chen et al. 2022\'s: Σ_m (n_m/n)·H(clusters of the samples expert m receives), in nats, on the test split (0: every expert sees one cluster; at most ln of the clusters). H(expert | cluster) is its mirror, Σ_k (n_k/n)·H(experts cluster k goes to) (0: every cluster goes to one expert; at most ln of the experts); the two agree only for a one-to-one map. Runs written before moec recorded both show only the mirror.', '');
  md.push(`Mean ± sample standard deviation over the seeds that finished; \`(n=1)\`: a single finished seed, no spread to show. Failed and unfinished trials are counted under "seeds done" and left out of the statistics. Total and active parameter counts are per model.`, '');

  md.push('## Trials', '');
  md.push(trialTableMd(trials), '');
  if (failed.length || unfinished.length) {
    md.push('### Not finished', '');
    for (const t of [...failed, ...unfinished]) md.push(`- \`${t.id}\` ${t.name}: **${t.status}** at step ${t.step}/${t.steps ?? '?'}${t.error ? `: ${t.error}` : ''}`);
    md.push('');
  }


  const points = perplexityCurves(run.trials, cls ? 'valid_acc' : 'valid_ppl');
  md.push(cls ? '## Test accuracy over training' : '## Perplexity over training', '');
  const labels = configLabels(groups);
  if (points.length) {
    await figure(perplexitySpec(points, labels, cls), cls ? 'accuracy' : 'perplexity', cls ? 'test accuracy vs step' : 'validation perplexity vs step');
    md.push(...legendKey(labels, groups), '');
  } else md.push('No evaluation has been logged yet.', '');

  // After the curves: what each swept value did, with its interval over seeds.
  const fx = effectsSection(run, trials, cls);
  md.push(...fx.md);
  for (const p of fx.plots) await figure(p.spec, p.name, p.alt);

  const byConfig = new Map<string, TrialData[]>();
  for (const t of run.trials) byConfig.set(configName(t.name), [...(byConfig.get(configName(t.name)) ?? []), t]);
  const pairs = expertPairs(run);
  md.push('## Expert assignment by label', '');
  if (!pairs.length) md.push('No expert statistics were logged (dense models, or no `experts ... by LABEL` in `evaluate`).', '');
  let n = 0;
  for (const [config, ts] of byConfig) {
    n++;
    for (const { data, label } of pairs) {
      // Finished trials only, when there are any: a failed seed's last evaluation is from an earlier step.
      const done = ts.filter((t) => t.state === 'done');
      const used = done.some((t) => t.experts.length) ? done : ts;
      const a = assignment(used, data, label);
      if (!a.cells.length) continue;
      const at = a.steps.length === 1 ? `step ${a.steps[0]}` : `steps ${a.steps.join(', ')}`;
      md.push(`### ${config}: ${data} by ${label}`, '');
      // Short subtitle lines: the widest one sets the image's width, and the cells shrink with it.
      const sub = [
        `${cls ? 'samples' : 'tokens'} routed to each expert per ${label} (rows sum to 1)`,
        `last evaluation (${at}), ${a.seeds === 1 ? 'one seed' : `summed over ${a.seeds} seeds`}`,
        ...(a.seeds > 1 ? ["each seed's experts matched to the first's by what they take"] : []),
      ];
      await figure(assignmentSpec(a.cells, `${config}: ${data} by ${label}`, sub, label), `experts-${n}-${slug(config)}-${slug(data)}-${slug(label)}`, `expert assignment for ${config}`);
      const byLayer = new Map<number, Record<string, number[]>>();
      for (const c of a.cells) ((byLayer.get(c.layer) ?? byLayer.set(c.layer, {}).get(c.layer)!)[c.value] ??= [])[c.expert] = c.tokens;
      md.push(...specialisationTable([...byLayer].sort((x, y) => x[0] - y[0]).map(([layer, counts]) => specialisation(layer, counts)), label, perSeedJsd(used, data, label), perSeedEntropy(used, data, label), a.seeds));
    }
  }

  md.push(...topTokensSection(byConfig));

  // The load diagnostics the training loop logged (one figure for the sweep).
  const diag = diagnosticsSection(run.trials, labels);
  md.push(...diag.md);
  if (diag.spec) await figure(diag.spec, 'moe-diagnostics', 'MoE load diagnostics over training');

  md.push('## Expert load over training', '');
  n = 0;
  let anyLoad = false;
  for (const [config, ts] of byConfig) {
    n++;
    const pair = pairs[0];
    if (!pair) break;
    const pts = loadOverTraining(ts, pair.data, pair.label);
    if (!pts.length) continue;
    anyLoad = true;
    md.push(`### ${config}`, '');
    const seeds = ts.filter((t) => t.experts.length).length;
    await figure(loadSpec(pts, `${config}: expert load on ${pair.data}`, [`fraction of routed tokens per expert, mean over ${seeds} seed${seeds === 1 ? '' : 's'}`, 'dashed: uniform load']), `load-${n}-${slug(config)}`, `expert load over training for ${config}`);
  }
  if (!anyLoad) md.push('No expert statistics were logged.', '');
  md.push(`---`, `Generated by \`moec report\` at ${new Date().toISOString()}. Wall times: ${duration(trials.reduce((a, t) => a + (t.wall_s ?? 0), 0))} in all.`, '');

  const files: ReportFiles = {
    markdown: path.join(dir, 'report.md'), html: path.join(dir, 'report.html'), csv: path.join(dir, 'report.csv'), trialsCsv: path.join(dir, 'report-trials.csv'), json: path.join(dir, 'report.json'), effectsCsv: path.join(dir, 'effects.csv'), figures,
  };
  const text = md.join('\n');
  writeFileAtomic(files.markdown, text.replace(/^<!--moec-figure-\d+-->\n/gm, ''));
  // In the HTML, the marker and the static image after it give way to the live chart.
  const htmlMd = text.replace(/^(<!--moec-figure-\d+-->)\n!\[[^\]]*\]\([^)]*\)\n\n\[SVG\]\([^)]*\)$/gm, '$1');
  let source: string | null = null;
  try { source = readFileSync(i.file, 'utf8'); } catch { /* moved or deleted since the run: the trials' configs still say it all */ }
  writeFileAtomic(files.html, await reportHtml({
    title: `${i.sweep}: moec report`, markdown: htmlMd, figures: live,
    config: { file: i.file, source, trials: run.trials.map((t) => ({ id: t.id, name: t.name, config: t.record?.config ?? null })) },
  }));
  writeFileAtomic(files.csv, groupCsv(groups, paths));
  writeFileAtomic(files.trialsCsv, trialCsv(trials, paths));
  writeFileAtomic(files.effectsCsv, fx.csv);
  writeJsonAtomic(files.json, { sweep: i.sweep, file: i.file, preset: i.preset, adapter: i.adapter, created: i.created, updated: i.updated, configurations: groups, trials, effects: fx.json, figures: figures.map(rel) });
  return { files, trials, groups, effects: fx.json };
}

/** The (data set, label) pairs with expert statistics, in first-seen order. */
function expertPairs(run: RunData): { data: string; label: string }[] {
  const seen = new Map<string, { data: string; label: string }>();
  for (const t of run.trials) for (const r of t.experts) if (!seen.has(`${r.data}/${r.label}`)) seen.set(`${r.data}/${r.label}`, { data: r.data, label: r.label });
  return [...seen.values()];
}

/** The legend's short names beside the full key of each configuration (its trial name without the seed). */
function legendKey(labels: ConfigLabel[], groups: GroupRow[]): string[] {
  if (labels.every((l) => l.label === l.config)) return [];
  const byConfig = new Map(groups.map((g) => [g.config, g]));
  return [markdownTable(['in the legend', 'configuration (full key)', 'seeds'], labels.map((l) => [l.label, l.config, String(byConfig.get(l.config)?.seeds ?? '')]))];
}
