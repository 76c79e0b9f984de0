// The terminal view of `moec sample --experts`: one line per routing layer, each generated token
// printed on the background colour of the expert it went to first.
import type { SampleResult } from './sample.js';

const PALETTE = [33, 166, 35, 161, 136, 61, 30, 130, 97, 28, 125, 24, 94, 67, 100, 131];
const bg = (e: number) => `\x1b[48;5;${PALETTE[e % PALETTE.length]}m\x1b[38;5;231m`;
const RESET = '\x1b[0m';

/** A token's text made visible on one line (newlines and tabs shown as escapes). */
const visible = (s: string) => s.replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r') || '∅';

export function expertView(r: SampleResult, colour: boolean): string {
  const lines: string[] = [];
  const what = r.scope === 'global' ? 'one decision for every MoE layer' : r.unit === 'sequence' ? 'one decision per sequence' : 'first choice';
  for (const l of r.routingLayers) {
    const cells = r.tokens.map((t) => {
      const e = t.experts?.[String(l)] ?? [];
      return colour ? `${bg(e[0] ?? 0)}${visible(t.text)}${RESET}` : `${visible(t.text)}[${e.join(',')}]`;
    });
    lines.push(`layer ${l} (${what}): ${cells.join(colour ? '' : ' ')}`);
  }
  if (colour && r.routingLayers.length) {
    const used = new Set(r.tokens.flatMap((t) => Object.values(t.experts ?? {}).map((e) => e[0]!)));
    lines.push(`experts: ${[...used].sort((a, b) => a - b).map((e) => `${bg(e)} ${e} ${RESET}`).join(' ')}`);
  }
  return lines.join('\n');
}
