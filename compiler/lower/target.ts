// The lowering target: what the lowering may assume about the adapter a plan is for (its features,
// subgroup size, whether it is a software rasteriser) and the options it lowers with. Passed to the
// lowering explicitly; each kernel's form is chosen from it by the conditions below, stated once.
//
// f16 is not a form here: `train.precision f16` is in the graph (the matmuls' arguments), and a
// plan that uses it names 'shader-f16' in its kernels' features, which the executor's preflight
// (compiler/lower/summary.ts, missingFeatures) checks against the adapter.
import type { FormName, Generator, KernelForms } from '../kernels/definition.js';
import { kernelTable } from './kernel-table.js';

/** What the lowering may assume (nothing, by default: plans are portable). */
export interface LoweringOptions {
  /**
   * Use the subgroup forms (matmul, attention, grouped expert matmuls): the adapter has the
   * 'subgroups' feature with subgroups of at least 8 invocations (see `subgroupFormsSuit`). Plans
   * lowered with it need 'subgroups'.
   */
  subgroupMatmul?: boolean;
}

/** The adapter a plan is lowered for, as far as form conditions read it. */
export interface AdapterTraits {
  features: ReadonlySet<string>;
  /** The adapter's smallest subgroup size, where it reports one. */
  subgroupMinSize?: number;
  /** A software rasteriser (lavapipe, SwiftShader), not a GPU. */
  software: boolean;
}

/**
 * A lowering target: the options, the adapter where one is at hand (moec compile without a GPU has
 * none: the options alone decide) and forms that replace the table's for some op kinds (a bench
 * comparing forms of one kernel). A plain LoweringOptions is a target without an adapter.
 */
export interface LoweringTarget extends LoweringOptions {
  adapter?: AdapterTraits;
  kernels?: Readonly<Record<string, Partial<KernelForms>>>;
}

/** The lowering options that are on, by name (empty: a portable plan). */
export function loweringNames(t: LoweringTarget | undefined): string[] {
  return t?.subgroupMatmul ? ['subgroupMatmul'] : [];
}

/** When each form applies, and why. A kernel without the chosen form lowers to its portable one. */
export const formConditions: Readonly<Record<FormName, { applies(t: LoweringTarget): boolean; reason: string }>> = {
  portable: { applies: () => true, reason: 'plain WGSL without extensions: runs on every adapter' },
  subgroup: {
    applies: (t) => t.subgroupMatmul === true,
    reason: "the target's subgroupMatmul option: set where subgroupFormsSuit(adapter) holds, or asked for (benches, --emit of a subgroup plan)",
  },
};

/**
 * Whether the subgroup forms suit an adapter, and why not. They need 'subgroups' with subgroups of
 * at least 8 (they share loads across 8 lanes). They are also kept to software adapters: they were
 * measured faster only on lavapipe (docs/PERFORMANCE.md), and on a GPU their workgroups of 8
 * invocations would leave most of a 32- or 64-wide warp idle; no hardware measurement says
 * otherwise yet. Measure one (npm run bench -- --only matmul-step) before lifting that condition.
 */
export function subgroupFormsSuit(a: AdapterTraits): { suits: boolean; why: string } {
  if (!a.features.has('subgroups')) return { suits: false, why: "the adapter has no 'subgroups' feature" };
  if ((a.subgroupMinSize ?? 0) < 8) return { suits: false, why: `the adapter's subgroups may be narrower than 8 (minimum ${a.subgroupMinSize ?? 'not reported'})` };
  if (!a.software) return { suits: false, why: 'a hardware adapter: the subgroup forms were measured faster on lavapipe only, and their 8-invocation workgroups would idle most of a GPU warp' };
  return { suits: true, why: 'a software adapter with subgroups of at least 8: measured faster there' };
}

/** The target for an adapter: the subgroup forms where they suit it. */
export function targetFor(adapter: AdapterTraits): LoweringTarget {
  return { adapter, subgroupMatmul: subgroupFormsSuit(adapter).suits };
}

/** The form an op kind lowers to on a target, and its generator (the target's own forms first). */
export function formFor(kind: string, t: LoweringTarget): { form: FormName; generate: Generator } {
  const own = t.kernels?.[kind];
  const forms = own || kernelTable[kind] ? { ...kernelTable[kind], ...own } : undefined;
  if (!forms?.portable) throw new Error(`lowering: no kernel for op kind '${kind}'`);
  for (const form of Object.keys(formConditions) as FormName[]) {
    if (form === 'portable') continue;
    const gen = forms[form];
    if (gen && formConditions[form].applies(t)) return { form, generate: gen };
  }
  return { form: 'portable', generate: forms.portable };
}
