// When a routing layer has collapsed, in words for the views: an expert took more of the tokens
// than the share the user set (`moec run --collapse-share S`), or some experts got no token at all
// over the logging window.
import type { LayerLoad } from '../train/events.js';
import { formatFixed } from './format.js';

export const DEFAULT_COLLAPSE_SHARE = 0.5;

/**
 * The warning for the collapsed layers, or undefined. A share at or below the balanced one
 * (top / experts) would flag every balanced layer, so only dead experts count there.
 */
export function collapseWarning(load: LayerLoad[], share: number): string | undefined {
  const parts: string[] = [];
  for (const l of load) {
    const why: string[] = [];
    if (share > l.fairShare && l.maxShare > share) why.push(`one expert took ${formatFixed(100 * l.maxShare, 0)}% of tokens (> ${formatFixed(100 * share, 0)}%)`);
    if (l.dead > 0) why.push(`${l.dead} dead expert${l.dead === 1 ? '' : 's'}`);
    if (why.length) parts.push(`L${l.layer} ${why.join(', ')}`);
  }
  return parts.length ? `router collapse: ${parts.join('; ')}` : undefined;
}

/** Per layer, the overload factor (max / mean load) and the dead experts, e.g. `L0 ×1.32 0 dead · L1 ×2.10 1 dead`. */
export function loadText(load: LayerLoad[]): string {
  return load.map((l) => `L${l.layer} ×${formatFixed(l.overload, 2)} ${l.dead} dead`).join(' · ');
}
