// HTML to plain text lines: one line per block element (paragraph, heading, list item, cell),
// scripts, styles and navigation left out. htmlparser2 does the parsing and entity decoding.
import { Parser } from 'htmlparser2';

const BLOCK = new Set(['p', 'div', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'li', 'td', 'th', 'tr', 'pre', 'br', 'dt', 'dd', 'blockquote', 'table', 'section', 'article', 'header', 'ol', 'ul']);
const SKIP = new Set(['script', 'style', 'noscript', 'nav', 'aside', 'head', 'title', 'button', 'input', 'select']);

export interface HtmlTextOptions {
  /** Only text inside the element with this id (e.g. LibreOffice's `DisplayArea`); whole body if absent. */
  rootId?: string;
}

/** The text lines of an HTML document, whitespace collapsed, empty lines dropped. */
export function htmlLines(html: string, opts: HtmlTextOptions = {}): string[] {
  const lines: string[] = [];
  let cur = '';
  let skip = 0;
  // With rootId: depth of open elements inside the root (0 = outside).
  let rootDepth = opts.rootId ? 0 : 1;
  const flush = () => {
    const t = cur.replace(/\s+/g, ' ').trim();
    if (t) lines.push(t);
    cur = '';
  };
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (opts.rootId) {
          if (rootDepth > 0) rootDepth++;
          else if (attrs.id === opts.rootId) rootDepth = 1;
        }
        if (SKIP.has(name)) skip++;
        if (BLOCK.has(name)) flush();
      },
      ontext(text) {
        if (rootDepth > 0 && skip === 0) cur += text;
      },
      onclosetag(name, implied) {
        if (SKIP.has(name)) skip = Math.max(0, skip - 1);
        if (BLOCK.has(name)) flush();
        if (opts.rootId && rootDepth > 0) rootDepth--;
        void implied;
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  flush();
  return lines;
}
