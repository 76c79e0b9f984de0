// Charts are Vega-Lite specs, compiled to Vega and rendered headlessly to SVG (no canvas, no
// display), then rasterised to PNG by resvg. Fonts come from the dejavu-fonts-ttf package, so a
// machine without system fonts draws the same text and the PNGs do not depend on the host.
import { createRequire } from 'node:module';
import type { TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../store/atomic.js';

// Loaded on first use: every `moec` command imports this module through the CLI registry, and
// only reports need the plotting libraries.
const libs = async () => {
  const [vega, vegaLite, resvg] = await Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
  return { vega, compile: vegaLite.compile, Resvg: resvg.Resvg };
};

const require = createRequire(import.meta.url);
const FONT = 'DejaVu Sans';
const fontFiles = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => require.resolve(`dejavu-fonts-ttf/ttf/${f}`));

export const chartConfig = {
  font: FONT,
  background: 'white',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start' as const },
};

export async function chartSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, compile } = await libs();
  const view = new vega.View(vega.parse(compile({ ...spec, config: { ...chartConfig, ...(spec.config ?? {}) } } as TopLevelSpec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG at twice the SVG's size, on white. */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  const { Resvg } = await libs();
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { fontFiles, loadSystemFonts: false, defaultFontFamily: FONT, sansSerifFamily: FONT },
  });
  return r.render().asPng();
}

/** Render `spec` to `<base>.svg` and `<base>.png`; returns both paths. */
export async function writeChart(spec: TopLevelSpec, base: string): Promise<{ svg: string; png: string }> {
  const svg = await chartSvg(spec);
  writeFileAtomic(`${base}.svg`, svg);
  writeFileAtomic(`${base}.png`, await svgToPng(svg));
  return { svg: `${base}.svg`, png: `${base}.png` };
}
