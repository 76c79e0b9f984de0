// Where a JSON text goes wrong. Node's JSON.parse messages do not always give a position, and a
// user fixing a JSONL file wants the column; this scanner follows the JSON grammar and returns the
// offset of the first character that cannot continue a valid document. It keeps its own stack of
// open brackets (no recursion), so a line of 100,000 '[' is a position, not a stack overflow, and
// it never copies the rest of the line (a long line stays linear).

const HEX = /^[0-9a-fA-F]$/;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** 0-based offset of the first syntax error in `s`, or -1 if it is valid JSON. */
export function jsonErrorOffset(s: string): number {
  let i = 0;
  const ws = () => { while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++; };
  const fail = (): never => { throw i; };
  const lit = (w: string) => { for (const c of w) { if (s[i] !== c) fail(); i++; } };
  const str = () => {
    i++; // opening quote
    while (i < s.length && s[i] !== '"') {
      if (s.charCodeAt(i) < 0x20) fail();
      if (s[i] === '\\') {
        i++;
        if (s[i] === 'u') { i++; for (let k = 0; k < 4; k++, i++) if (!HEX.test(s[i] ?? '')) fail(); continue; }
        if (!'"\\/bfnrt'.includes(s[i] ?? 'x')) fail();
      }
      i++;
    }
    if (s[i] !== '"') fail();
    i++;
  };
  const num = () => {
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(s);
    if (!m || !m[0]) fail();
    i += m![0].length;
  };
  const key = () => {
    ws();
    if (s[i] !== '"') fail();
    str(); ws();
    if (s[i] !== ':') fail();
    i++;
  };
  const open: string[] = [];
  try {
    let wantValue = true;
    for (;;) {
      ws();
      if (wantValue) {
        const c = s[i];
        if (c === '{' || c === '[') {
          i++; ws();
          const close = c === '{' ? '}' : ']';
          if (s[i] === close) { i++; wantValue = false; continue; }
          open.push(close);
          if (c === '{') key();
          continue;
        }
        if (c === '"') str();
        else if (c === 't') lit('true');
        else if (c === 'f') lit('false');
        else if (c === 'n') lit('null');
        else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) num();
        else fail();
        wantValue = false;
        continue;
      }
      const close = open[open.length - 1];
      if (close === undefined) break;
      if (s[i] === ',') { i++; if (close === '}') key(); wantValue = true; continue; }
      if (s[i] === close) { i++; open.pop(); continue; }
      fail();
    }
    if (i < s.length) fail();
    return -1;
  } catch (at) {
    if (typeof at === 'number') return Math.min(at, s.length);
    throw at;
  }
}
