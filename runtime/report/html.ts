// report.html: the report as one self-contained page. The same Markdown as report.md (tables,
// notes) rendered by `marked`, with every figure drawn live by vega-embed from its Vega-Lite spec:
// tooltips with the values, a click on a legend entry isolates that configuration (shift-click
// adds one), drag and wheel zoom and pan the steps, double-click resets. Vega, Vega-Lite and
// vega-embed are inlined from their packages' browser bundles and the data sits in the specs, so
// the file opens offline and can be mailed or archived as it is.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { TopLevelSpec } from 'vega-lite';
import { chartConfig } from './render.js';

const require = createRequire(import.meta.url);
/** A file of an installed package, found on Node's search path (vega-embed exports no package.json). */
function bundle(pkg: string, file: string): string {
  for (const dir of require.resolve.paths(pkg) ?? []) {
    const f = path.join(dir, pkg, file);
    if (existsSync(f)) return readFileSync(f, 'utf8');
  }
  throw new Error(`the ${pkg} package has no ${file}: reinstall with 'npm ci'`);
}

export interface HtmlFigure {
  /** Where the figure goes: the placeholder line it replaces in the Markdown. */
  marker: string;
  spec: TopLevelSpec;
  alt: string;
}

/**
 * Adds the page's interactions to a figure whose lines are coloured by configuration (`color`
 * field `label`) or by expert: a legend-bound selection fading the other series, and x-only zoom
 * and pan bound to the scales. Heat maps (no line layer) are left as they are, with their tooltips.
 */
export function interactive(spec: TopLevelSpec): TopLevelSpec {
  const s = structuredClone(spec) as unknown as Record<string, unknown>;
  const unit = (s.spec as Record<string, unknown> | undefined) ?? s;
  const layers = unit.layer as Record<string, unknown>[] | undefined;
  const line = layers?.find((l) => (typeof l.mark === 'object' ? (l.mark as { type: string }).type : l.mark) === 'line');
  if (!line) return spec;
  const enc = line.encoding as Record<string, Record<string, unknown>>;
  const field = enc.color?.field as string | undefined;
  const params: unknown[] = [{ name: 'zoom', select: { type: 'interval', encodings: ['x'] }, bind: 'scales' }];
  if (field) {
    params.push({ name: 'pick', select: { type: 'point', fields: [field] }, bind: 'legend' });
    enc.opacity = { condition: { param: 'pick', value: 1 }, value: 0.12 };
    // The band (a layer without the legend) follows the line's selection.
    for (const l of layers!) {
      if (l === line) continue;
      const e = l.encoding as Record<string, Record<string, unknown>> | undefined;
      if (e?.color?.field === field) e.opacity = { condition: { param: 'pick', value: 0.18 }, value: 0.03 };
    }
  }
  line.params = params;
  return s as unknown as TopLevelSpec;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** A script's text may not contain `</script`; JSON may not leave its element either. */
const inlineScript = (code: string) => code.replace(/<\/(script)/gi, '<\\/$1');

const STYLE = `
body { font-family: 'DejaVu Sans', system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; }
td { font-variant-numeric: tabular-nums; }
code, pre { background: #f6f6f6; }
pre { padding: 0.8em; overflow-x: auto; font-size: 12px; }
.figure { margin: 1em 0 1.5em; }
.hint { color: #666; font-size: 12px; }
details { margin: 0.5em 0; }
`;

/** The page: `markdown` rendered, each figure's marker line replaced by its live chart, then the sweep's configuration. */
export async function reportHtml(o: { title: string; markdown: string; figures: HtmlFigure[]; config: { file: string; source: string | null; trials: { id: string; name: string; config: unknown }[] } }): Promise<string> {
  const { marked } = await import('marked');
  let md = o.markdown;
  o.figures.forEach((f, i) => {
    md = md.replace(f.marker, `<div class="figure" id="fig-${i}" role="img" aria-label="${esc(f.alt)}"></div>`);
  });
  const body = await marked.parse(md, { gfm: true });
  const conf = [
    '<h2>Sweep configuration</h2>',
    o.config.source !== null ? `<p><code>${esc(o.config.file)}</code>:</p><pre>${esc(o.config.source)}</pre>` : `<p><code>${esc(o.config.file)}</code> (not readable now; each trial's resolved configuration is below).</p>`,
    ...o.config.trials.map((t) => `<details><summary>${esc(t.name)} <code>${esc(t.id)}</code>: resolved configuration</summary><pre>${esc(JSON.stringify(t.config, null, 2))}</pre></details>`),
  ].join('\n');
  const specs = o.figures.map((f) => ({ ...interactive(f.spec), config: { ...chartConfig, ...(f.spec.config ?? {}) } }));
  const run = `
const specs = JSON.parse(document.getElementById('moec-specs').textContent);
window.moecFigures = Promise.all(specs.map((spec, i) =>
  vegaEmbed('#fig-' + i, spec, { actions: false, renderer: 'svg', tooltip: { theme: 'light' } }).then((r) => r.view)));
`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(o.title)}</title>
<style>${STYLE}</style>
<script>${inlineScript(bundle('vega', 'build/vega.min.js'))}</script>
<script>${inlineScript(bundle('vega-lite', 'build/vega-lite.min.js'))}</script>
<script>${inlineScript(bundle('vega-embed', 'build/vega-embed.min.js'))}</script>
</head><body>
<p class="hint">Hover a point for its values; click a legend entry to isolate a configuration (shift-click adds one, click the background to show all); drag or scroll on a plot to pan or zoom the steps, double-click to reset.</p>
${body}
${conf}
<script type="application/json" id="moec-specs">${inlineScript(JSON.stringify(specs))}</script>
<script>${run}</script>
</body></html>
`;
}
