import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanText, decodeUtf8, firstInvalidUtf8, lineColumnAt } from '../../../runtime/data/text.js';
import { htmlLines } from '../../../runtime/data/html.js';
import { passages, untagBrown } from '../../../runtime/data/sources/brown.js';
import { splitFortunes } from '../../../runtime/data/sources/fortunes.js';
import { udhrSections } from '../../../runtime/data/sources/udhr.js';
import { gpt2, bytes } from '../../../runtime/data/tokenizers.js';
import { jsonErrorOffset } from '../../../runtime/data/json-error.js';

test('firstInvalidUtf8 finds the first bad byte, and accepts valid text', () => {
  const ok = new TextEncoder().encode('Grüße, Привет, 😀');
  assert.equal(firstInvalidUtf8(ok), -1);
  const bad = Uint8Array.from([0x61, 0x0a, 0x62, 0xe9, 0x63]); // "a\nb" + latin-1 é + "c"
  assert.equal(firstInvalidUtf8(bad), 3);
  assert.deepEqual(lineColumnAt(bad, 3), { line: 2, column: 2 });
  assert.equal(firstInvalidUtf8(Uint8Array.from([0xc0, 0x80])), 0, 'overlong encoding');
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x61, 0xe2, 0x82])), 1, 'truncated sequence');
  assert.equal(firstInvalidUtf8(Uint8Array.from([0xed, 0xa0, 0x80])), 0, 'surrogate');
});

test('decodeUtf8 names the file, line and column of a non-UTF-8 byte', () => {
  const bytes = Buffer.from('first line\nsecond ', 'utf8');
  const bad = Buffer.concat([bytes, Buffer.from([0xff]), Buffer.from(' end')]);
  assert.throws(() => decodeUtf8(bad, 'notes.txt'), (e: Error & { format(): string }) => {
    assert.match(e.format(), /^notes\.txt:2:8: error: notes\.txt is not UTF-8 text: byte 0xff at line 2, column 8/);
    assert.match(e.format(), /hint: convert the file to UTF-8/);
    return true;
  });
  assert.equal(decodeUtf8(Buffer.from('\ufeffhello'), 'x'), 'hello', 'a BOM is dropped');
});

test('cleanText normalises line ends, control characters and overstriking', () => {
  assert.equal(cleanText('  a\r\nb\x00c\x1b[1mbold\x1b[0m  \n\n\n\nd_\bx '), 'a\nbcbold\n\ndx');
});

test('htmlLines keeps block structure and decodes entities, within the root element only', () => {
  const html = '<html><head><title>T</title><script>var x;</script></head><body><nav>menu</nav><div id="DisplayArea"><h2>Title &amp; more</h2><p>One <b>bold</b>\n word.</p><ul><li>a</li><li>b&lt;c</li></ul></div><footer>foot</footer></body></html>';
  assert.deepEqual(htmlLines(html, { rootId: 'DisplayArea' }), ['Title & more', 'One bold word.', 'a', 'b<c']);
  assert.deepEqual(htmlLines(html), ['Title & more', 'One bold word.', 'a', 'b<c', 'foot']);
});

test('untagBrown strips POS tags and detokenises', () => {
  const tagged = "\n\n\tThe/at jury/nn said/vbd ``/`` it/pps did/dod n't/* ''/'' ,/, and/cc Allen/np Jr./np ./.\n\n\tNext/ap (/( one/cd )/) ./.\n";
  assert.deepEqual(untagBrown(tagged), ['The jury said "it didn\'t", and Allen Jr.', 'Next (one).']);
  assert.deepEqual(passages(['aaaa', 'bb', 'cccccc', 'd'], 6), ['aaaa bb', 'cccccc', 'd']);
});

test('splitFortunes splits at % lines', () => {
  assert.deepEqual(splitFortunes('one\n%\ntwo\nlines\n%\n\n%\nthree\n'), ['one', 'two\nlines', 'three']);
});

test('udhrSections gives the preamble and each article', () => {
  const html = '<html><body><h1>UDHR</h1><header><h2>Preamble</h2><p>Whereas.</p></header><article><h2>Article 1</h2><p>All free.</p></article><article><h2>Article 2</h2><p>Everyone.</p></article></body></html>';
  assert.deepEqual(udhrSections(html), ['Preamble\nWhereas.', 'Article 1\nAll free.', 'Article 2\nEveryone.']);
});

test('tokenizers: GPT-2 r50k (special text stays text) and bytes', () => {
  assert.equal(gpt2.vocab, 50257);
  assert.equal(gpt2.eot, 50256);
  assert.deepEqual(Array.from(gpt2.encode('Hello world')), [15496, 995]);
  assert.ok(!Array.from(gpt2.encode('a<|endoftext|>b')).includes(50256));
  assert.equal(gpt2.decode(gpt2.encode('Grüße')), 'Grüße');
  assert.deepEqual(Array.from(bytes.encode('aé')), [0x61, 0xc3, 0xa9]);
  assert.equal(bytes.eot, 0);
  // German needs more GPT-2 tokens per byte than English.
  const en = 'The function returns the probability that an asset will end up between two barrier levels.';
  const de = 'Die Funktion gibt die Wahrscheinlichkeit zurück, dass ein Vermögenswert zwischen zwei Barrieren endet.';
  assert.ok(Buffer.byteLength(en) / gpt2.encode(en).length > Buffer.byteLength(de) / gpt2.encode(de).length);
});

test('jsonErrorOffset points at the first character that breaks the JSON grammar', () => {
  assert.equal(jsonErrorOffset('{"a": [1, 2.5e3, "x\\n", true, null]}'), -1);
  assert.equal(jsonErrorOffset('{"a": }'), 6);
  assert.equal(jsonErrorOffset('{"a": 1,}'), 8);
  assert.equal(jsonErrorOffset("{'a': 1}"), 1);
  assert.equal(jsonErrorOffset('{"a": 1'), 7);
  assert.equal(jsonErrorOffset('{"a": 1} x'), 9);
  assert.equal(jsonErrorOffset('{"a": tru}'), 9);
});
