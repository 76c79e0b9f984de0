// Which documents a data set uses and where they go. Both decisions hash the document's id, never
// its position, so adding or removing documents does not move the others:
// - `limit` keeps documents in the order of a hash of their id until the character budget is spent
//   (the last one cut short), a sample spread over every label rather than the first files;
// - a document is in the validation split when the hash of its split key is below `valid`.
import { unitHash } from './hash.js';
import type { Doc } from './types.js';

export function applyLimit(docs: Doc[], limit: number): Doc[] {
  if (!limit) return docs;
  const ordered = docs.map((d) => ({ d, h: unitHash(`order\0${d.id}`) })).sort((a, b) => a.h - b.h || (a.d.id < b.d.id ? -1 : 1));
  const out: Doc[] = [];
  let left = limit;
  for (const { d } of ordered) {
    if (left <= 0) break;
    // Never cut between the halves of a surrogate pair.
    const cut = /[\uD800-\uDBFF]/.test(d.text[left - 1] ?? '') ? left - 1 : left;
    out.push(d.text.length <= left ? d : { ...d, text: d.text.slice(0, cut) });
    left -= d.text.length;
  }
  return out;
}

export function isValid(doc: Doc, valid: number): boolean {
  return valid > 0 && unitHash(`split\0${doc.splitKey ?? doc.id}`) < valid;
}
