// What resolution carries along: the diagnostics it reports, the source span of every value it read
// (by JSON pointer, so that validation points at the text), and the overrides of presets and sweeps.
import type { Value } from '../../grammar/ast.js';
import { error, type Diagnostic } from '../../grammar/diagnostics.js';
import type { Span } from '../../grammar/span.js';

/** A value set by a preset or a sweep, at a language path such as ['model', 'moe', 'top']. */
export interface Override {
  path: string[];
  args: Value[][];
  keySpan: Span;
  span: Span;
  /** `top=2` (for messages). */
  label?: string;
}

export class Ctx {
  readonly diagnostics: Diagnostic[] = [];
  readonly spans = new Map<string, Span>();
  /** Hint appended to every diagnostic (the trial being resolved). */
  constructor(readonly trial: string | undefined = undefined) {}
  error(message: string, span: Span | undefined, hint?: string, code?: string): void {
    const h = this.trial ? (hint ? `${hint}; in trial ${this.trial}` : `in trial ${this.trial}`) : hint;
    this.diagnostics.push(error(message, span, h, code));
  }
  /** The span recorded for `ptr` or its nearest recorded parent. */
  spanOf(ptr: string): Span | undefined {
    let p = ptr;
    for (;;) {
      const s = this.spans.get(p);
      if (s) return s;
      if (p === '') return undefined;
      p = p.slice(0, p.lastIndexOf('/'));
    }
  }
}
