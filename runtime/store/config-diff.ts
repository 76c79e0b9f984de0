// What differs between two stored configurations, said the way a user writes the settings.
import { canonicalJson } from '../../compiler/frontend/sweep.js';

/** The settings that differ between two configurations, as language-like paths: 'train.steps 20 -> 40'. */
export function configDiff(was: unknown, now: unknown, at = ''): string[] {
  if (canonicalJson(was) === canonicalJson(now)) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
  if (!isObj(was) || !isObj(now)) return [`${at} ${was === undefined ? '(unset)' : canonicalJson(was)} -> ${now === undefined ? '(unset)' : canonicalJson(now)}`];
  const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
  return keys.flatMap((k) => configDiff(was[k], now[k], at ? `${at}.${k}` : k));
}

