// The router's settings as a tagged union: `label` exists only on a label router and `dim` only on
// a cosine router, so code cannot read one on the wrong kind. The resolved config keeps the flat
// fields (`router`, `label`, `dim`; trial ids hash it); the compiler reads them through this.
import type { MoeConfig, RouterKind } from '../frontend/types.js';

export type RouterChoice =
  | { kind: Exclude<RouterKind, 'label' | 'cosine'> }
  | { kind: 'label'; label: string }
  | { kind: 'cosine'; dim: number };

export function routerChoiceOf(moe: MoeConfig): RouterChoice {
  switch (moe.router) {
    case 'label':
      // The front end refuses a label router without its label (compiler/rules/model.ts).
      if (moe.label === null) throw new Error('router label needs the label that picks the expert');
      return { kind: 'label', label: moe.label };
    case 'cosine':
      return { kind: 'cosine', dim: moe.dim };
    default:
      return { kind: moe.router };
  }
}

/** The settings of a router known to be of kind `kind` (a plug-in reading its own). */
export function choiceOf<K extends RouterChoice['kind']>(moe: MoeConfig, kind: K): Extract<RouterChoice, { kind: K }> {
  const c = routerChoiceOf(moe);
  if (c.kind !== kind) throw new Error(`a ${kind} router's settings asked of a ${c.kind} router`);
  return c as Extract<RouterChoice, { kind: K }>;
}
