/**
 * The console's escaping (console/html.ts) and value display (console/render-value.ts), in
 * process: any string comes out of a template as text (no markup characters survive, and
 * decoding the entities gives the string back); any bytes are shown within the byte bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { escapeHtml, href, html, SafeHtml } from '../../console/html.ts';
import { JSON_PARSE_BYTES_MAX, showValue } from '../../console/render-value.ts';

const unescape = (s: string): string => s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);

test('escapeHtml: no markup character survives, and the entities decode back to the input', () => {
  fc.assert(
    // Mostly markup characters and entity-like pieces, with any other character now and then.
    fc.property(fc.string({ unit: fc.oneof(fc.constantFrom('<', '>', '"', "'", '&', 'amp;', '&lt;', '#39;', 'a', ' ', '='), fc.string({ unit: 'binary', maxLength: 1 })), maxLength: 60 }), (s) => {
      const e = escapeHtml(s);
      assert.doesNotMatch(e, /[<>"']/);
      assert.doesNotMatch(e, /&(?!(amp|lt|gt|quot|#39);)/);
      assert.equal(unescape(e), s);
    }),
    { numRuns: 500 },
  );
});

test('html: interpolated values are escaped, SafeHtml and arrays of it are not, null/undefined/false are empty', () => {
  const evil = '<script>alert("x")</script>';
  assert.equal(html`<p title="${evil}">${evil}</p>`.text, '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p>');
  const inner = html`<b>${'a&b'}</b>`;
  assert.ok(inner instanceof SafeHtml);
  assert.equal(html`<i>${inner}${[inner, 'c<']}${null}${undefined}${false}${0}</i>`.text, '<i><b>a&amp;b</b><b>a&amp;b</b>c&lt;0</i>');
  assert.equal(href('/topic', { name: 'a&b c', x: undefined, y: null }), '/topic?name=a%26b%20c');
});

test('showValue: JSON pretty-printed, text as is, invalid UTF-8 as hex, null as null', () => {
  assert.deepEqual(showValue(Buffer.from('{"a":[1,"x"]}'), 4096), { kind: 'json', text: '{\n  "a": [\n    1,\n    "x"\n  ]\n}', sizeBytes: 13, truncated: false });
  assert.deepEqual(showValue(Buffer.from('[1,'), 4096), { kind: 'text', text: '[1,', sizeBytes: 3, truncated: false });
  assert.deepEqual(showValue(Buffer.from('héllo'), 4096), { kind: 'text', text: 'héllo', sizeBytes: 6, truncated: false });
  assert.deepEqual(showValue(Buffer.from([0xff, 0x00, 0x41]), 4096), { kind: 'binary', text: 'ff0041', sizeBytes: 3, truncated: false });
  assert.deepEqual(showValue(null, 4096), { kind: 'null', text: 'null', sizeBytes: 0, truncated: false });
  const big = showValue(Buffer.alloc(JSON_PARSE_BYTES_MAX + 10, 'a'), 100);
  assert.deepEqual(big, { kind: 'text', text: 'a'.repeat(100), sizeBytes: JSON_PARSE_BYTES_MAX + 10, truncated: true });
});

test('showValue: any bytes are shown within the bound, and a value shown whole is the value', () => {
  const bytesArb = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 150 }).map((s) => new Uint8Array(Buffer.from(s))), fc.json().map((s) => new Uint8Array(Buffer.from(s))));
  fc.assert(
    fc.property(bytesArb, fc.integer({ min: 1, max: 400 }), (bytes, bytesMax) => {
      const s = showValue(bytes, bytesMax);
      assert.equal(s.sizeBytes, bytes.byteLength);
      assert.ok(s.text.length <= (s.kind === 'binary' ? 2 * bytesMax : bytesMax), `${s.kind} ${s.text.length} > ${bytesMax}`);
      if (!s.truncated && s.kind === 'binary') assert.equal(s.text, Buffer.from(bytes).toString('hex'));
      if (!s.truncated && s.kind === 'text') assert.equal(s.text, Buffer.from(bytes).toString('utf8'));
      if (!s.truncated && s.kind === 'json') assert.deepEqual(JSON.parse(s.text), JSON.parse(Buffer.from(bytes).toString('utf8')));
    }),
    { numRuns: 3000 },
  );
});
