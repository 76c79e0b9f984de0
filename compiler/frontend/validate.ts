// Validation of a resolved pipeline: the schema and semantic phases of the validation registry
// (compiler/rules), each problem a diagnostic at the text that produced the value, with its code.
import { warning } from '../../grammar/diagnostics.js';
import { runRules } from '../rules/index.js';
import type { Ctx } from './resolve.js';
import type { Pipeline } from './types.js';

export function validatePipeline(p: Pipeline, ctx: Ctx): void {
  // Semantic rules assume the schema holds for the fields they read; they guard their own types.
  for (const f of runRules(['schema', 'semantic'], { config: p, written: (ptr) => ctx.spans.has(ptr) })) {
    if (f.severity === 'warning') ctx.diagnostics.push(warning(f.message, ctx.spanOf(f.ptr), f.hint, f.code));
    else ctx.error(f.message, ctx.spanOf(f.ptr), f.hint, f.code);
  }
}
