/**
 * Diagnostic: what matching one subscription pattern against 10000 topic names of the maximal
 * 249 characters costs, for ordinary patterns, for patterns that make backtracking engines
 * explode, and for patterns that make a DFA explode (the linear-time engine's worst case).
 *
 *   node --import tsx bench/subscription-pattern-cost.ts
 * Not a test: numbers depend on the machine.
 */
import { SubscriptionPattern } from '../server/group/subscription-pattern.ts';

const NAMES = 10_000;
const NAME_CHARS = 249;
let seed = 1;
const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const filler = 'abcdefghij'.repeat(25);
const wordy = Array.from({ length: NAMES }, (_, i) => `t${i}-${filler}`.slice(0, NAME_CHARS));
const ab = Array.from({ length: NAMES }, () => Array.from({ length: NAME_CHARS }, () => (random() < 0.5 ? 'a' : 'b')).join(''));

const cases: Array<[string, string[], string]> = [
  ['orders\\..*', wordy, 'ordinary'],
  ['(?:a|b|c|d|e|f|g|h|i|j|t|-|[0-9])*z', wordy, 'ordinary'],
  ['(a+)+b', ab, 'exponential for backtracking'],
  ['.*'.repeat(400), wordy, 'large NFA, tiny DFA'],
  ['(.*a){1,3}'.repeat(20), wordy, 'large NFA'],
  ['(a|b)*a(a|b){20}', ab, 'DFA explodes'],
  ['(a|b)*a(a|b){300}', ab, 'DFA explodes, large NFA'],
];
for (const [pattern, names, kind] of cases) {
  const p = SubscriptionPattern.compile(pattern);
  const t = performance.now();
  let matched = 0;
  for (const n of names) if (p.matches(n)) matched++;
  const ms = performance.now() - t;
  const t2 = performance.now();
  for (const n of names) p.matches(n);
  console.log(`${pattern.slice(0, 28).padEnd(30)} ${kind.padEnd(30)} ${String(p.stateCount).padStart(5)} states  matched ${String(matched).padStart(5)}  first pass ${ms.toFixed(0).padStart(6)} ms  memoised pass ${(performance.now() - t2).toFixed(1)} ms`);
}
