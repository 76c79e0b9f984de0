// Tokens per label: how many documents, bytes and tokens each label value has, and so how many
// bytes a token covers (GPT-2 BPE, trained on English web text, needs more tokens per byte elsewhere).
import { utf8Length } from './text.js';
import type { Doc, LabelStats } from './types.js';

/** Accumulates per-label statistics document by document. */
export class LabelStatsCounter {
  private readonly rows = new Map<string, LabelStats>();
  constructor(private readonly labels: string[]) {}

  add(doc: Doc, tokens: number): void {
    const chars = doc.text.length;
    const bytes = utf8Length(doc.text);
    for (const label of this.labels) {
      const value = doc.labels[label] ?? '(none)';
      const k = `${label}\0${value}`;
      let r = this.rows.get(k);
      if (!r) this.rows.set(k, (r = { label, value, documents: 0, chars: 0, bytes: 0, tokens: 0 }));
      r.documents++;
      r.chars += chars;
      r.bytes += bytes;
      r.tokens += tokens;
    }
  }

  result(order?: (label: string) => string[] | undefined): LabelStats[] {
    const rows = [...this.rows.values()];
    const rank = (r: LabelStats) => {
      const o = order?.(r.label);
      const i = o ? o.indexOf(r.value) : -1;
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    return rows.sort((a, b) => this.labels.indexOf(a.label) - this.labels.indexOf(b.label) || rank(a) - rank(b) || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  }
}

/** A table of label statistics, aligned, for the CLI. */
export function formatLabelStats(rows: LabelStats[], tokenizerName: string): string {
  const head = ['label', 'value', 'docs', 'bytes', `${tokenizerName} tokens`, 'bytes/token'];
  const body = rows.map((r) => [r.label, r.value, String(r.documents), String(r.bytes), String(r.tokens), r.tokens ? (r.bytes / r.tokens).toFixed(2) : '-']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), ...body.map(line)].join('\n');
}
