// The linear-time subscription pattern engine, fuzzed against JS RegExp on the supported
// subset (same answer for every pattern and name), plus the refusals and the bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NFA_STATES_MAX, PATTERN_CHARS_MAX, PatternSyntaxError, SubscriptionPattern } from '../../../server/group/subscription-pattern.ts';

// Patterns over a small alphabet, so that random names match them often enough to matter.
const ALPHABET = ['a', 'b', 'c', '.', '-', '_', 'Z', '7', '\n', ' '];
const literal = fc.constantFrom('a', 'b', 'c', 'Z', '7', '_', '-', '\\.', '\\-', '\\_', '\\*', '\\(', '\\[', '\\]', '\\{', '\\}', '\\|', '\\?', '\\^', '\\$', '\\\\');
const classItem = fc.constantFrom('a', 'b', 'a-c', 'A-Z', '0-9', '.', '\\-', '\\d', '\\w', '\\s', '\\D', '\\W', '\\S', '\\n', '\\]', '\\\\', '_');
const charClass = fc.tuple(fc.boolean(), fc.array(classItem, { maxLength: 4 })).map(([neg, items]) => `[${neg ? '^' : ''}${items.join('')}]`);
const simpleAtom = fc.oneof(literal, charClass, fc.constantFrom('.', '\\d', '\\w', '\\s', '\\D', '\\W', '\\S', '\\t', '\\n'));
const quantifier = fc.tuple(fc.constantFrom('', '', '*', '+', '?', '{2}', '{0,2}', '{1,}', '{0}', '{1,3}'), fc.boolean()).map(([q, lazy]) => (q && lazy ? `${q}?` : q));

/** Alternatives of sequences of terms; groups nest at most `depth` deep (RegExp, the reference, backtracks). */
function patternOf(depth: number): fc.Arbitrary<string> {
  const atoms: Array<fc.Arbitrary<string>> = [fc.tuple(simpleAtom, quantifier).map(([a, q]) => a + q), fc.constantFrom('^', '$')];
  if (depth > 0) atoms.push(fc.tuple(fc.constantFrom('(', '(?:'), patternOf(depth - 1), quantifier).map(([open, inner, q]) => `${open}${inner})${q}`));
  const term = fc.oneof(...atoms);
  const seq = fc.array(term, { maxLength: 3 }).map((terms) => terms.join(''));
  return fc.array(seq, { minLength: 1, maxLength: 3 }).map((alts) => alts.join('|'));
}
const pattern = patternOf(2);
const name = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 8 }).map((cs) => cs.join(''));

test('matches exactly what new RegExp(`^(?:p)$`) matches, on the supported subset', () => {
  fc.assert(
    fc.property(pattern, fc.array(name, { minLength: 1, maxLength: 8 }), (p, names) => {
      const ours = SubscriptionPattern.compile(p);
      const theirs = new RegExp(`^(?:${p})$`);
      for (const n of names) assert.equal(ours.matches(n), theirs.test(n), `pattern ${JSON.stringify(p)} name ${JSON.stringify(n)}`);
    }),
    { numRuns: 3000 },
  );
});

test('names a pattern matches, found by RegExp itself, are matched too', () => {
  // Random names rarely match a long pattern; these come from strings RegExp accepts.
  fc.assert(
    fc.property(pattern, fc.array(name, { minLength: 20, maxLength: 30 }), (p, names) => {
      const theirs = new RegExp(`^(?:${p})$`);
      const ours = SubscriptionPattern.compile(p);
      for (const n of names.filter((x) => theirs.test(x))) assert.ok(ours.matches(n), `pattern ${JSON.stringify(p)} name ${JSON.stringify(n)}`);
    }),
    { numRuns: 500 },
  );
});

test('patterns that make backtracking exponential are matched in one pass', () => {
  for (const [p, n] of [['(a+)+b', 'a'.repeat(200)], ['(a|a)*c', 'a'.repeat(200)], ['(a*)*b', 'a'.repeat(200)], ['(.*a){20}', 'a'.repeat(19) + 'b'.repeat(200)]] as const) {
    const compiled = SubscriptionPattern.compile(p);
    assert.equal(compiled.matches(n), false, p);
    assert.ok(compiled.stateCount <= NFA_STATES_MAX);
  }
  assert.equal(SubscriptionPattern.compile('(a+)+b').matches('a'.repeat(200) + 'b'), true);
});

test('a pattern whose DFA outgrows its memory bound still answers like RegExp (NFA simulation takes over)', () => {
  // (a|b)*a(a|b){10}: about 2^11 DFA states over a/b names, more than one pattern may keep.
  const p = '(a|b)*a(a|b){10}';
  const ours = SubscriptionPattern.compile(p);
  const theirs = new RegExp(`^(?:${p})$`);
  fc.assert(
    fc.property(fc.array(fc.constantFrom('a', 'b'), { minLength: 0, maxLength: 60 }), (chars) => {
      const n = chars.join('');
      assert.equal(ours.matches(n), theirs.test(n), n);
    }),
    { numRuns: 5000 },
  );
});

test('everything outside the subset is refused with the position and a reason', () => {
  const refused: Array<[string, RegExp]> = [
    ['(a)\\1', /backreferences are not supported at position 3/],
    ['(?=a)a', /lookaround/],
    ['(?!a)b', /lookaround/],
    ['(?<=a)b', /lookaround/],
    ['(?<n>a)', /named groups/],
    ['\\ba', /word boundaries/],
    ['a\\B', /word boundaries/],
    ['\\x41', /the escape \\x is not supported/],
    ['\\u0041', /the escape \\u is not supported/],
    ['\\cA', /the escape \\c is not supported/],
    ['\\0', /the escape \\0 is not supported/],
    ['\\p{L}', /the escape \\p is not supported/],
    ['*a', /nothing to repeat at position 0/],
    ['a**', /nothing to repeat/],
    ['^*', /nothing to repeat/],
    ['{2}', /nothing to repeat/],
    ['a{', /literal \{ must be escaped/],
    ['a}', /literal \} must be escaped/],
    ['a]', /literal \] must be escaped/],
    ['a{3,2}', /out of order/],
    ['a{1001}', /repetition counts above 1000/],
    ['[b-a]', /range out of order/],
    ['[\\w-z]', /cannot be a range end/],
    ['[a', /unterminated character class at position 0/],
    ['(a', /unterminated group at position 0/],
    ['a)', /unmatched \) at position 1/],
    ['a\\', /at end of pattern/],
    ['x'.repeat(PATTERN_CHARS_MAX + 1), /longer than 1000 characters/],
    ['((a{30}){30}){30}', /more than 2000 automaton states/],
  ];
  for (const [p, reason] of refused) {
    assert.throws(() => SubscriptionPattern.compile(p), (e: unknown) => e instanceof PatternSyntaxError && reason.test(e.message), p);
  }
  // The longest accepted pattern still compiles.
  assert.equal(SubscriptionPattern.compile('x'.repeat(PATTERN_CHARS_MAX)).matches('x'.repeat(PATTERN_CHARS_MAX)), true);
});

test("'' matches no topic (topic names are never empty) and anchors are allowed anywhere", () => {
  assert.equal(SubscriptionPattern.compile('').matches('orders'), false);
  assert.equal(SubscriptionPattern.compile('^orders$').matches('orders'), true);
  assert.equal(SubscriptionPattern.compile('orders|^audit.*').matches('audit-eu'), true);
  assert.equal(SubscriptionPattern.compile('a$b').matches('ab'), false);
});
