// Short names for the configurations of a sweep in legends: the fewest swept settings that tell
// them apart (a setting every configuration shares says nothing), with the full key kept in a
// table beside the figure.

export interface ConfigLabel {
  config: string;
  label: string;
}

/**
 * Greedy: take the setting with the most distinct values, then the one that splits the most
 * configurations still sharing a label, until each label is unique. Configurations with no swept
 * settings keep their name.
 */
export function configLabels(configs: { config: string; params: Record<string, string> }[]): ConfigLabel[] {
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c.params)))];
  const value = (c: { params: Record<string, string> }, k: string) => c.params[k] ?? '—';
  const chosen: string[] = [];
  const labelOf = (c: { params: Record<string, string> }, ks: string[]) => ks.map((k) => `${short(k)}=${value(c, k)}`).join(' ');
  const collisions = (ks: string[]) => configs.length - new Set(configs.map((c) => labelOf(c, ks))).size;
  while (collisions(chosen) > 0) {
    let best: { key: string; left: number; distinct: number } | undefined;
    for (const k of keys) {
      if (chosen.includes(k)) continue;
      const left = collisions([...chosen, k]);
      const distinct = new Set(configs.map((c) => value(c, k))).size;
      if (!best || left < best.left || (left === best.left && distinct > best.distinct)) best = { key: k, left, distinct };
    }
    if (!best || best.left === collisions(chosen)) break; // nothing left tells them apart
    chosen.push(best.key);
  }
  // Keep the sweep's own order of settings, not the order they were picked in.
  const ordered = keys.filter((k) => chosen.includes(k));
  return configs.map((c) => ({ config: c.config, label: ordered.length ? labelOf(c, ordered) : c.config }));
}

/** `model.moe.top` -> `top`: the last part names the setting well enough beside the full-key table. */
const short = (path: string) => path.split('.').at(-1)!;
