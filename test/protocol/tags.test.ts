// Tag sets (SPEC §8.7) and tag expressions (SPEC §6.7): syntax, canonical form, limits, and
// fuzzing of both parsers: any input gives a result or the documented SluiceError, never a
// crash or a hang, and what is accepted round-trips.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { buildBatch, HEADER_TAGS, newBatchInfo, Off, validateBatch, writeInt32 } from '../../protocol/record-batch.ts';
import { crc32c } from '../../protocol/crc32c.ts';
import { TagExpression, TAG_EXPRESSION_BYTES_MAX, TAG_EXPRESSION_DEPTH_MAX, TAG_EXPRESSION_TAGS_MAX } from '../../protocol/tag-expression.ts';
import { batchTagsAt, canonicalTags, checkTagSetBytes, foundTagsBytes, parseTagSet, TAG_BYTES_MAX, tagsHeader, TAGS_PER_SET_MAX } from '../../protocol/tags.ts';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
const enc = new TextEncoder();
const check = (s: string) => checkTagSetBytes(enc.encode(s), 0, enc.encode(s).length);
const isCode = (code: number) => (e: unknown) => e instanceof SluiceError && e.code === code;

describe('tag sets', () => {
  test('canonical values pass; anything else names its problem', () => {
    assert.equal(check('a'), '');
    assert.equal(check('order.created,region:eu'), '');
    assert.equal(check('A,B,a,b'), '', 'byte order: upper case first');
    assert.equal(check(['x'.repeat(64)].join(',')), '');
    assert.match(check(''), /empty/);
    assert.match(check('b,a'), /not sorted/);
    assert.match(check('a,a'), /repeats/);
    assert.match(check('a,,b'), /empty tag/);
    assert.match(check('a,'), /empty tag/);
    assert.match(check('a b'), /not allowed/);
    assert.match(check('é'), /not allowed/);
    assert.match(check('x'.repeat(65)), /more than 64/);
    const seventeen = Array.from({ length: 17 }, (_, i) => `t${String(i).padStart(2, '0')}`).join(',');
    assert.match(check(seventeen), /more than 16 tags/);
  });

  test('SPEC §9: steps 9 and 9a are one walk, so a null sluice-tags in record 0 is INVALID_TAGS even when record 1 is not well framed', () => {
    const b = Buffer.from(buildBatch([
      { key: null, value: enc.encode('a'), timestamp: 1, headers: [{ key: HEADER_TAGS, value: null }] },
      { key: null, value: enc.encode('b'), timestamp: 1 },
    ]));
    // Record 1 is the last 7 bytes: length, attributes, timestampDelta, offsetDelta, keyLength, valueLength, 'b', headerCount.
    const keyLengthAt = b.length - 4;
    assert.equal(b[keyLengthAt], 0x01, 'record 1 keyLength -1');
    b[keyLengthAt] = 0x03; // -2: record 1 is not well framed (step 9)
    writeInt32(b, Off.crc, crc32c(b, Off.attributes, b.length));
    const info = newBatchInfo();
    assert.equal(validateBatch(b, 0, b.length, info), ErrorCode.INVALID_TAGS, info.problem);
    // Without the bad header the same framing problem is CORRUPT_MESSAGE.
    const c = Buffer.from(buildBatch([{ key: null, value: enc.encode('a'), timestamp: 1 }, { key: null, value: enc.encode('b'), timestamp: 1 }]));
    c[c.length - 4] = 0x03;
    writeInt32(c, Off.crc, crc32c(c, Off.attributes, c.length));
    assert.equal(validateBatch(c, 0, c.length, newBatchInfo()), ErrorCode.CORRUPT_MESSAGE);
  });

  test('canonicalTags sorts, removes duplicates and refuses bad tags with INVALID_TAGS', () => {
    assert.deepEqual(canonicalTags(['region:eu', 'order.created', 'region:eu']), ['order.created', 'region:eu']);
    assert.deepEqual(canonicalTags([]), []);
    assert.throws(() => canonicalTags(['ok', 'not ok']), isCode(ErrorCode.INVALID_TAGS));
    assert.throws(() => canonicalTags(['']), isCode(ErrorCode.INVALID_TAGS));
    assert.throws(() => canonicalTags(Array.from({ length: 17 }, (_, i) => `t${i}`)), /more than 16/);
    assert.equal(tagsHeader([]), null);
    assert.deepEqual(parseTagSet(tagsHeader(['b', 'a'])!.value), ['a', 'b']);
  });

  test('batchTagsAt finds the first record\'s sluice-tags value among other headers', () => {
    const value = enc.encode('a,b');
    const b = buildBatch([{ key: enc.encode('k'), value: enc.encode('v'.repeat(300)), headers: [{ key: 'x', value: null }, { key: HEADER_TAGS, value }] }]);
    const at = batchTagsAt(b, 0, b.length);
    assert.deepEqual(Buffer.from(b.subarray(at, at + foundTagsBytes)).toString(), 'a,b');
    const untagged = buildBatch([{ value: enc.encode('v'), headers: [{ key: 'sluice-tagz', value }] }]);
    assert.equal(batchTagsAt(untagged, 0, untagged.length), -1);
  });

  const tagArb = fc.stringMatching(/^[A-Za-z0-9._:/-]{1,12}$/);
  test('fuzz: every canonicalised tag list passes the broker check; random bytes never crash it', () => {
    fc.assert(fc.property(fc.array(tagArb, { minLength: 1, maxLength: TAGS_PER_SET_MAX }), (tags) => {
      const h = tagsHeader(tags)!;
      assert.equal(checkTagSetBytes(h.value!, 0, h.value!.length), '');
      assert.deepEqual(parseTagSet(h.value), canonicalTags(tags));
    }), { numRuns: runs(500) });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      const problem = checkTagSetBytes(bytes, 0, bytes.length);
      if (problem === '') {
        // Accepted bytes are exactly a canonical list.
        const tags = parseTagSet(bytes);
        assert.deepEqual(tags, canonicalTags(tags));
        assert.equal(tags.join(','), Buffer.from(bytes).toString('latin1'));
      }
    }), { numRuns: runs(2000) });
  });
});

describe('tag expressions', () => {
  const m = (expr: string, ...tags: string[]) => TagExpression.parse(expr).matches(new Set(tags));

  test('precedence ! > && > ||, parentheses, whitespace; the empty tag set', () => {
    assert.equal(m('a', 'a'), true);
    assert.equal(m('a', 'b'), false);
    assert.equal(m('a || b && !c', 'b'), true);
    assert.equal(m('a || b && !c', 'b', 'c'), false);
    assert.equal(m('a || b && !c', 'a', 'c'), true, '&& binds tighter than ||');
    assert.equal(m('(a || b) && !c', 'a', 'c'), false);
    assert.equal(m('!a'), true, 'an untagged batch has the empty set');
    assert.equal(m('!!a', 'a'), true);
    assert.equal(m(' \t(\n region:eu )&&order.created ', 'order.created', 'region:eu'), true);
    assert.equal(TagExpression.anyOf(['a', 'b']).matches(new Set(['b'])), true);
  });

  test('bad expressions get INVALID_TAG_EXPRESSION naming the place', () => {
    for (const bad of ['', '   ', 'a ||', '|| a', 'a && && b', '(a', 'a)', 'a b', 'a | b', 'a & b', 'é', '!', '()', 'x'.repeat(TAG_BYTES_MAX + 1)]) {
      assert.throws(() => TagExpression.parse(bad), isCode(ErrorCode.INVALID_TAG_EXPRESSION), JSON.stringify(bad));
    }
    assert.throws(() => TagExpression.parse('a ||'), /character 5/);
    assert.throws(() => TagExpression.parse('('.repeat(TAG_EXPRESSION_DEPTH_MAX + 1) + 'a' + ')'.repeat(TAG_EXPRESSION_DEPTH_MAX + 1)), /nested deeper/);
    assert.equal(m('('.repeat(TAG_EXPRESSION_DEPTH_MAX) + 'a' + ')'.repeat(TAG_EXPRESSION_DEPTH_MAX), 'a'), true);
    assert.throws(() => TagExpression.parse(Array.from({ length: TAG_EXPRESSION_TAGS_MAX + 1 }, () => 'a').join('||')), /more than 64 tags/);
    assert.throws(() => TagExpression.parse('a'.repeat(10) + ' '.repeat(TAG_EXPRESSION_BYTES_MAX)), /more than 1024/);
    assert.equal(m('!'.repeat(1000) + 'a', 'a'), true, 'a run of ! costs no recursion');
  });

  // A generated expression and a reference evaluation of it.
  type Gen = { text: string; eval: (s: Set<string>) => boolean };
  const leaf: fc.Arbitrary<Gen> = fc.constantFrom('a', 'b', 'c', 'd').map((t) => ({ text: t, eval: (s: Set<string>) => s.has(t) }));
  const { expr } = fc.letrec<{ expr: Gen }>((tie) => ({
    expr: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      tie('expr').map((e) => ({ text: `!${e.text}`, eval: (s: Set<string>) => !e.eval(s) })),
      fc.tuple(tie('expr'), tie('expr')).map(([x, y]) => ({ text: `(${x.text} && ${y.text})`, eval: (s: Set<string>) => x.eval(s) && y.eval(s) })),
      fc.tuple(tie('expr'), tie('expr')).map(([x, y]) => ({ text: `(${x.text} || ${y.text})`, eval: (s: Set<string>) => x.eval(s) || y.eval(s) })),
    ),
  }));

  test('fuzz: generated expressions evaluate like their reference; random text parses or fails cleanly', () => {
    fc.assert(fc.property(expr, fc.subarray(['a', 'b', 'c', 'd']), (e, tags) => {
      let parsed: TagExpression;
      try {
        parsed = TagExpression.parse(e.text);
      } catch (err) {
        // Only the documented limits may refuse a well-formed expression.
        assert.ok(err instanceof SluiceError && err.code === ErrorCode.INVALID_TAG_EXPRESSION && /nested deeper|more than/.test(err.message), String(err));
        return;
      }
      assert.equal(parsed.matches(new Set(tags)), e.eval(new Set(tags)), e.text);
    }), { numRuns: runs(1000) });
    const alphabet = fc.constantFrom('a', 'b', '!', '&', '|', '(', ')', ' ', '&&', '||', 'é', '\n', ',');
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 60 }).map((a) => a.join('')), (text) => {
      try {
        const parsed = TagExpression.parse(text);
        assert.equal(typeof parsed.matches(new Set(['a'])), 'boolean');
      } catch (err) {
        assert.ok(err instanceof SluiceError && err.code === ErrorCode.INVALID_TAG_EXPRESSION, String(err));
      }
    }), { numRuns: runs(3000) });
  });
});
