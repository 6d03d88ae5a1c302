/**
 * Subscription patterns (ConsumerGroupHeartbeat subscribedTopicRegex, SPEC §6.10): a safe
 * subset of ECMAScript regular expressions, matched against topic names in time linear in the
 * name's length. A backtracking engine (JS RegExp) takes exponential time on patterns such as
 * `(a+)+b`, and the coordinator matches on the event loop, so one member could stall every
 * client of the broker. This engine compiles the pattern to a Thompson NFA and runs it as a
 * DFA built lazily, state by state, as names are matched (the RE2 approach): no backtracking,
 * so no pattern makes a match take more than linear time.
 *
 * Accepted syntax (anything else is refused with INVALID_REGULAR_EXPRESSION at subscribe time):
 *   literals; `\` followed by ASCII punctuation (a literal); `.`; `\d \D \w \W \s \S`;
 *   `\t \n \r \f \v`; classes `[...]` and `[^...]` with ranges and the escapes above;
 *   groups `(...)` and `(?:...)`; alternation `|`; quantifiers `* + ? {n} {n,} {n,m}`, each
 *   optionally followed by `?` (lazy; the same set of names matches); anchors `^` and `$`.
 *   Refused: backreferences, lookaround, named groups, `\b \B`, `\x \u \c \0` and other
 *   letter or digit escapes, a lone `{ } ]`, and repetition counts above REPEAT_COUNT_MAX.
 *
 * Invariants:
 * - For every accepted pattern p and string s: matches(s) === new RegExp(`^(?:${p})$`).test(s)
 *   (checked by a fast-check fuzz test against RegExp).
 * - Bounds: a pattern has at most PATTERN_CHARS_MAX characters and compiles to at most
 *   NFA_STATES_MAX states, so one match costs at most (name length + 1) * NFA_STATES_MAX
 *   steps (one NFA closure per character when no DFA state helps; one array lookup per
 *   character on a warm DFA). Memory per pattern: DFA_SLOTS_MAX slots of DFA, then the NFA is
 *   simulated instead; MATCH_CACHE_ENTRIES_MAX memoised results; COMPILED_PATTERNS_MAX
 *   compiled patterns are shared by source.
 * - Measured worst case (bench/subscription-pattern-cost.ts): a DFA-exploding pattern such as
 *   (a|b)*a(a|b){300} against 10000 distinct random 249-character names takes ~10 s in all,
 *   once (results are memoised); ordinary patterns take milliseconds for 10000 names.
 */

/** Longest pattern accepted, in UTF-16 code units. */
export const PATTERN_CHARS_MAX = 1000;
/** Largest NFA a pattern may compile to; bounds the work of one match (counted repetition expands). */
export const NFA_STATES_MAX = 2000;
/** Largest n or m in `{n}`, `{n,}`, `{n,m}`. */
export const REPEAT_COUNT_MAX = 1000;
/** Names whose result a compiled pattern remembers; the cache restarts empty when full. */
const MATCH_CACHE_ENTRIES_MAX = 10_000;
/**
 * Memory of one pattern's DFA, in array slots (a state costs 128 transition slots plus its NFA
 * state set); once spent, new states are used once and not kept (the DFA then degrades to
 * simulating the NFA, never worse).
 */
const DFA_SLOTS_MAX = 100_000;
/** Compiled patterns kept by source; the cache restarts empty when full. */
const COMPILED_PATTERNS_MAX = 100;

/** A pattern outside the subset, or malformed; `position` is the offending character's index. */
export class PatternSyntaxError extends Error {
  constructor(
    readonly position: number,
    detail: string,
  ) {
    super(`${detail} at position ${position}`);
    this.name = 'PatternSyntaxError';
  }
}

/** A set of UTF-16 code units: sorted, disjoint [lo, hi] pairs, flat. */
type Ranges = number[];

const CODE_UNIT_MAX = 0xffff;
const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
// ECMAScript WhiteSpace and LineTerminator code points (all in the BMP).
const SPACE: Ranges = [0x09, 0x0d, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff];
const LINE_TERMINATORS: Ranges = [0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029];

function normalize(r: Ranges): Ranges {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < r.length; i += 2) pairs.push([r[i]!, r[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  for (const [lo, hi] of pairs) {
    const n = out.length;
    if (n > 0 && lo <= out[n - 1]! + 1) out[n - 1] = Math.max(out[n - 1]!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function complement(r: Ranges): Ranges {
  const n = normalize(r);
  const out: Ranges = [];
  let next = 0;
  for (let i = 0; i < n.length; i += 2) {
    if (n[i]! > next) out.push(next, n[i]! - 1);
    next = n[i + 1]! + 1;
  }
  if (next <= CODE_UNIT_MAX) out.push(next, CODE_UNIT_MAX);
  return out;
}

function inRanges(r: Ranges, c: number): boolean {
  for (let i = 0; i < r.length; i += 2) {
    if (c < r[i]!) return false;
    if (c <= r[i + 1]!) return true;
  }
  return false;
}

type Node =
  | { k: 'empty' }
  | { k: 'set'; ranges: Ranges }
  | { k: 'cat'; items: Node[] }
  | { k: 'alt'; items: Node[] }
  | { k: 'rep'; node: Node; min: number; max: number }
  | { k: 'bol' }
  | { k: 'eol' };

const CONTROL_ESCAPES: Record<string, number> = { t: 0x09, n: 0x0a, r: 0x0d, f: 0x0c, v: 0x0b };
const CLASS_ESCAPES: Record<string, Ranges> = { d: DIGIT, D: complement(DIGIT), w: WORD, W: complement(WORD), s: SPACE, S: complement(SPACE) };
const isAsciiPunctuation = (c: string) => /^[!-/:-@[-`{-~]$/.test(c);

/** Recursive descent over the pattern; depth is bounded by PATTERN_CHARS_MAX. */
class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.alternation();
    if (this.pos < this.src.length) throw this.error(this.src[this.pos] === ')' ? 'unmatched )' : `unexpected ${this.src[this.pos]}`);
    return node;
  }

  private error(detail: string, at = this.pos): PatternSyntaxError {
    return new PatternSyntaxError(at, detail);
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private alternation(): Node {
    const items = [this.sequence()];
    while (this.peek() === '|') {
      this.pos++;
      items.push(this.sequence());
    }
    return items.length === 1 ? items[0]! : { k: 'alt', items };
  }

  private sequence(): Node {
    const items: Node[] = [];
    for (let c = this.peek(); c !== undefined && c !== '|' && c !== ')'; c = this.peek()) {
      const start = this.pos;
      const atom = this.atom();
      const q = this.quantifier();
      if (q) {
        // A bare anchor cannot be quantified (as in RegExp); a group holding one can.
        if (this.src[start] === '^' || this.src[start] === '$') throw this.error('nothing to repeat', start + 1);
        items.push({ k: 'rep', node: atom, min: q.min, max: q.max });
      } else {
        items.push(atom);
      }
    }
    return items.length === 0 ? { k: 'empty' } : items.length === 1 ? items[0]! : { k: 'cat', items };
  }

  private atom(): Node {
    const c = this.src[this.pos]!;
    switch (c) {
      case '^':
        this.pos++;
        return { k: 'bol' };
      case '$':
        this.pos++;
        return { k: 'eol' };
      case '.':
        this.pos++;
        return { k: 'set', ranges: complement(LINE_TERMINATORS) };
      case '(': {
        const open = this.pos;
        this.pos++;
        if (this.peek() === '?') {
          if (this.src[this.pos + 1] !== ':') throw this.error('lookaround and named groups are not supported (only (?: ) groups)');
          this.pos += 2;
        }
        const inner = this.alternation();
        if (this.peek() !== ')') throw this.error('unterminated group', open);
        this.pos++;
        return inner;
      }
      case '[':
        return { k: 'set', ranges: this.characterClass() };
      case '\\': {
        const r = this.escape(false);
        return { k: 'set', ranges: r };
      }
      case '*':
      case '+':
      case '?':
        throw this.error('nothing to repeat');
      case '{':
        throw this.error(this.quantifierAhead() ? 'nothing to repeat' : 'a literal { must be escaped as \\{');
      case '}':
      case ']':
        throw this.error(`a literal ${c} must be escaped as \\${c}`);
      default:
        this.pos++;
        return { k: 'set', ranges: [c.charCodeAt(0), c.charCodeAt(0)] };
    }
  }

  /** Whether `{n}`, `{n,}` or `{n,m}` starts at pos. */
  private quantifierAhead(): boolean {
    return /^\{\d+(,\d*)?\}/.test(this.src.slice(this.pos, this.pos + 24));
  }

  private quantifier(): { min: number; max: number } | null {
    const c = this.peek();
    let q: { min: number; max: number };
    if (c === '*') q = { min: 0, max: Infinity };
    else if (c === '+') q = { min: 1, max: Infinity };
    else if (c === '?') q = { min: 0, max: 1 };
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos, this.pos + 24));
      if (!m) throw this.error('a literal { must be escaped as \\{');
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (min > REPEAT_COUNT_MAX || (max !== Infinity && max > REPEAT_COUNT_MAX)) throw this.error(`repetition counts above ${REPEAT_COUNT_MAX} are not supported`);
      if (max < min) throw this.error('numbers out of order in {} quantifier');
      q = { min, max };
      this.pos += m[0].length - 1;
    } else return null;
    this.pos++;
    if (this.peek() === '?') this.pos++; // lazy: changes which match is found, not whether one is
    if (this.peek() === '*' || this.peek() === '+' || this.peek() === '?' || (this.peek() === '{' && this.quantifierAhead())) throw this.error('nothing to repeat');
    return q;
  }

  /** An escape at pos (the backslash); inClass: inside [...]. */
  private escape(inClass: boolean): Ranges {
    const at = this.pos;
    const c = this.src[this.pos + 1];
    if (c === undefined) throw this.error('\\ at end of pattern');
    this.pos += 2;
    if (CLASS_ESCAPES[c]) return CLASS_ESCAPES[c];
    if (CONTROL_ESCAPES[c] !== undefined) return [CONTROL_ESCAPES[c], CONTROL_ESCAPES[c]];
    if (isAsciiPunctuation(c)) return [c.charCodeAt(0), c.charCodeAt(0)];
    if (/[1-9]/.test(c)) throw this.error('backreferences are not supported', at);
    if (!inClass && (c === 'b' || c === 'B')) throw this.error('word boundaries (\\b, \\B) are not supported', at);
    throw this.error(`the escape \\${c} is not supported`, at);
  }

  private characterClass(): Ranges {
    const open = this.pos;
    this.pos++;
    let negate = false;
    if (this.peek() === '^') {
      negate = true;
      this.pos++;
    }
    const ranges: Ranges = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined) throw this.error('unterminated character class', open);
      if (c === ']') break;
      const startAt = this.pos;
      const lo = this.classAtom();
      if (this.peek() === '-' && this.src[this.pos + 1] !== ']' && this.src[this.pos + 1] !== undefined) {
        this.pos++;
        const hiAt = this.pos;
        const hi = this.classAtom();
        if (lo.length !== 2 || lo[0] !== lo[1] || hi.length !== 2 || hi[0] !== hi[1]) throw this.error('a class escape (\\d, \\w, \\s ...) cannot be a range end', hi.length === 2 && hi[0] === hi[1] ? startAt : hiAt);
        if (hi[0]! < lo[0]!) throw this.error('range out of order in character class', startAt);
        ranges.push(lo[0]!, hi[0]!);
      } else {
        ranges.push(...lo);
      }
    }
    this.pos++;
    return negate ? complement(ranges) : normalize(ranges);
  }

  private classAtom(): Ranges {
    const c = this.src[this.pos]!;
    if (c === '\\') return this.escape(true);
    if (c === '[') throw this.error('a literal [ inside a class must be escaped as \\[');
    this.pos++;
    return [c.charCodeAt(0), c.charCodeAt(0)];
  }
}

// NFA states, in parallel arrays. A Set state consumes one code unit in its ranges; Split
// has two epsilon edges; Bol/Eol are epsilon edges that hold at the start/end only.
const Op = { Set: 0, Split: 1, Bol: 2, Eol: 3, Match: 4 } as const;
type Op = (typeof Op)[keyof typeof Op];

class NfaBuilder {
  readonly op: Op[] = [];
  readonly out: number[] = [];
  readonly out1: number[] = [];
  readonly ranges: Array<Ranges | null> = [];

  add(op: Op, ranges: Ranges | null = null): number {
    if (this.op.length >= NFA_STATES_MAX) throw new PatternSyntaxError(0, `the pattern needs more than ${NFA_STATES_MAX} automaton states (shorten it or lower its repetition counts)`);
    this.op.push(op);
    this.out.push(-1);
    this.out1.push(-1);
    this.ranges.push(ranges);
    return this.op.length - 1;
  }

  /**
   * Emits node with its exit wired to `next`; returns its entry state. Built back to front, so
   * every edge points at an existing state.
   */
  emit(node: Node, next: number): number {
    switch (node.k) {
      case 'empty':
        return next;
      case 'set': {
        const s = this.add(Op.Set, node.ranges);
        this.out[s] = next;
        return s;
      }
      case 'bol':
      case 'eol': {
        const s = this.add(node.k === 'bol' ? Op.Bol : Op.Eol);
        this.out[s] = next;
        return s;
      }
      case 'cat': {
        let entry = next;
        for (let i = node.items.length - 1; i >= 0; i--) entry = this.emit(node.items[i]!, entry);
        return entry;
      }
      case 'alt': {
        const entries = node.items.map((n) => this.emit(n, next));
        let entry = entries[entries.length - 1]!;
        for (let i = entries.length - 2; i >= 0; i--) {
          const s = this.add(Op.Split);
          this.out[s] = entries[i]!;
          this.out1[s] = entry;
          entry = s;
        }
        return entry;
      }
      case 'rep': {
        let entry = next;
        if (node.max === Infinity) {
          // x* : a split that loops back to itself through x.
          const loop = this.add(Op.Split);
          this.out[loop] = this.emit(node.node, loop);
          this.out1[loop] = next;
          entry = loop;
        } else {
          for (let i = node.min; i < node.max; i++) {
            const s = this.add(Op.Split);
            this.out[s] = this.emit(node.node, entry);
            this.out1[s] = next;
            entry = s;
          }
        }
        for (let i = 0; i < node.min; i++) entry = this.emit(node.node, entry);
        return entry;
      }
    }
  }
}

/**
 * A state of the lazily built DFA: the set of NFA states alive after some prefix (Set states
 * waiting for a character, Eol states waiting for the end, Match), and its transitions, filled
 * in as characters are seen.
 */
interface DfaState {
  readonly nfa: readonly number[];
  /** By character code, for ASCII (topic names are ASCII); other characters are not cached. */
  readonly next: Array<DfaState | undefined>;
  /** Whether the name may end here: [at position 0, elsewhere]; computed on first use. */
  accept: [boolean | undefined, boolean | undefined];
}

const ASCII_LIMIT = 128;

/** Compiled patterns by source, so a member re-sending its pattern keeps the warm caches. */
const compiled = new Map<string, SubscriptionPattern>();

/** A compiled subscription pattern; matches() is anchored at both ends, like `^(?:p)$`. */
export class SubscriptionPattern {
  private readonly op: Op[];
  private readonly out: number[];
  private readonly out1: number[];
  private readonly ranges: Array<Ranges | null>;
  private readonly start: number;
  private readonly results = new Map<string, boolean>();
  /** DFA states by their NFA state set, while DFA_SLOTS_MAX allows. */
  private readonly dfa = new Map<string, DfaState>();
  private dfaSlots = 0;
  private dfaStart: DfaState | null = null;
  // Scratch for closures: the closure each state was last visited in, and a stack.
  private readonly mark: Int32Array;
  private readonly stack: number[] = [];
  private generation = 0;

  private constructor(
    readonly source: string,
    b: NfaBuilder,
    start: number,
  ) {
    this.op = b.op;
    this.out = b.out;
    this.out1 = b.out1;
    this.ranges = b.ranges;
    this.start = start;
    this.mark = new Int32Array(b.op.length);
  }

  /** Parses and compiles; throws PatternSyntaxError for anything outside the subset or too large. */
  static compile(source: string): SubscriptionPattern {
    const known = compiled.get(source);
    if (known) return known;
    if (source.length > PATTERN_CHARS_MAX) throw new PatternSyntaxError(PATTERN_CHARS_MAX, `the pattern is longer than ${PATTERN_CHARS_MAX} characters`);
    const ast = new Parser(source).parse();
    const b = new NfaBuilder();
    const match = b.add(Op.Match);
    const start = b.emit(ast, match);
    const pattern = new SubscriptionPattern(source, b, start);
    if (compiled.size >= COMPILED_PATTERNS_MAX) compiled.clear();
    compiled.set(source, pattern);
    return pattern;
  }

  get stateCount(): number {
    return this.op.length;
  }

  matches(name: string): boolean {
    const known = this.results.get(name);
    if (known !== undefined) return known;
    const result = this.run(name);
    if (this.results.size >= MATCH_CACHE_ENTRIES_MAX) this.results.clear();
    this.results.set(name, result);
    return result;
  }

  /**
   * Runs the DFA, building the states it needs. Each new DFA state costs one NFA closure
   * (at most NFA_STATES_MAX steps), each known transition one array lookup: never worse than
   * simulating the NFA, and usually one lookup per character.
   */
  private run(s: string): boolean {
    let d = this.dfaStart ?? (this.dfaStart = this.intern(this.closure([this.start], true, false, true))!);
    for (let i = 0; i < s.length; i++) {
      if (d.nfa.length === 0) return false;
      const c = s.charCodeAt(i);
      let n = c < ASCII_LIMIT ? d.next[c] : undefined;
      if (!n) {
        const alive = this.closure(this.step(d.nfa, c), false, false, true);
        const kept = this.intern(alive);
        // DFA memory spent: simulate the NFA for the rest of the name (no keys, no sorting).
        if (!kept) return this.simulate(alive, s, i + 1);
        n = kept;
        if (c < ASCII_LIMIT) d.next[c] = n;
      }
      d = n;
    }
    return this.accepts(d, s.length === 0);
  }

  /** The NFA states entered by consuming c from the set `alive`. */
  private step(alive: readonly number[], c: number): number[] {
    const seeds: number[] = [];
    for (const st of alive) if (this.op[st] === Op.Set && inRanges(this.ranges[st]!, c)) seeds.push(this.out[st]!);
    return seeds;
  }

  /** Thompson simulation of the NFA from the set `alive`, at position `from` (> 0) of s. */
  private simulate(alive: number[], s: string, from: number): boolean {
    for (let i = from; i < s.length && alive.length > 0; i++) alive = this.closure(this.step(alive, s.charCodeAt(i)), false, false, false);
    return this.closure(alive.filter((st) => this.op[st] === Op.Eol || this.op[st] === Op.Match), false, true, false).some((st) => this.op[st] === Op.Match);
  }

  /** Whether a name may end in d: Match is alive, or reachable through Eol (and Bol at position 0). */
  private accepts(d: DfaState, atStart: boolean): boolean {
    const slot = atStart ? 0 : 1;
    const known = d.accept[slot];
    if (known !== undefined) return known;
    const seeds = d.nfa.filter((st) => this.op[st] === Op.Eol || this.op[st] === Op.Match);
    const result = this.closure(seeds, atStart, true, false).some((st) => this.op[st] === Op.Match);
    d.accept[slot] = result;
    return result;
  }

  /** The DFA state for a sorted NFA state set, kept or new; null when DFA memory is spent. */
  private intern(nfa: number[]): DfaState | null {
    const key = nfa.join(',');
    const known = this.dfa.get(key);
    if (known) return known;
    const slots = ASCII_LIMIT + nfa.length;
    if (this.dfaSlots + slots > DFA_SLOTS_MAX) return null;
    const d: DfaState = { nfa, next: new Array<DfaState | undefined>(ASCII_LIMIT), accept: [undefined, undefined] };
    this.dfaSlots += slots;
    this.dfa.set(key, d);
    return d;
  }

  /**
   * The states reachable from seeds through epsilon edges (sorted when asked, to be a DFA
   * key): Split is followed, Bol only at position 0, Eol only at the end (else it is kept,
   * waiting for the end); Set and Match are kept.
   */
  private closure(seeds: readonly number[], atStart: boolean, atEnd: boolean, sorted: boolean): number[] {
    if (this.generation === 0x7fffffff) {
      this.mark.fill(0);
      this.generation = 0;
    }
    const gen = ++this.generation;
    const out: number[] = [];
    const stack = this.stack;
    stack.length = 0;
    for (let i = seeds.length - 1; i >= 0; i--) stack.push(seeds[i]!);
    while (stack.length > 0) {
      const st = stack.pop()!;
      if (this.mark[st] === gen) continue;
      this.mark[st] = gen;
      switch (this.op[st]) {
        case Op.Split:
          stack.push(this.out1[st]!, this.out[st]!);
          break;
        case Op.Bol:
          if (atStart) stack.push(this.out[st]!);
          break;
        case Op.Eol:
          if (atEnd) stack.push(this.out[st]!);
          else out.push(st);
          break;
        default:
          out.push(st);
      }
    }
    return sorted ? out.sort((a, b) => a - b) : out;
  }
}
