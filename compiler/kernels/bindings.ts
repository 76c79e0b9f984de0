import type { BindingType, KernelBinding } from '../plan/types.js';

/** Numbered @group(0) bindings from `{ wgslName: type }`, in the order the WGSL declares them. */
export function bindings(spec: Record<string, BindingType>): KernelBinding[] {
  return Object.entries(spec).map(([name, type], binding) => ({ binding, name, type }));
}
