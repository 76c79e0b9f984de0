// What differs between two stored configurations, said the way a user writes the settings.
import { canonicalJson, configWithoutDefaults } from '../../compiler/frontend/sweep.js';

/**
 * The settings that differ between two trial configurations, as language-like paths ('train.steps
 * 20 -> 40'); a key added to the language since one was stored, at its default, is no difference.
 */
export function trialConfigDiff(was: unknown, now: unknown): string[] {
  return configDiff(configWithoutDefaults(was), configWithoutDefaults(now));
}

/** The values that differ between two JSON values, as dotted paths. */
export function configDiff(was: unknown, now: unknown, at = ''): string[] {
  if (canonicalJson(was) === canonicalJson(now)) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
  if (!isObj(was) || !isObj(now)) return [`${at} ${was === undefined ? '(unset)' : canonicalJson(was)} -> ${now === undefined ? '(unset)' : canonicalJson(now)}`];
  const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
  return keys.flatMap((k) => configDiff(was[k], now[k], at ? `${at}.${k}` : k));
}

