/**
 * Tag expressions (SPEC §6.7): which tag sets a filtered Fetch wants.
 *
 *   expr    := or
 *   or      := and ( '||' and )*
 *   and     := unary ( '&&' unary )*
 *   unary   := '!'* primary
 *   primary := TAG | '(' or ')'
 *
 * TAG is a tag as in a tag set (protocol/tags.ts); whitespace (space, tab, CR, LF) separates
 * tokens and is otherwise ignored. Precedence: ! over && over ||. A tag matches a tag set that
 * contains it; an untagged batch has the empty tag set, so `!a` matches it.
 *
 * Limits (all INVALID_TAG_EXPRESSION when passed): TAG_EXPRESSION_BYTES_MAX bytes,
 * TAG_EXPRESSION_TAGS_MAX tag occurrences, TAG_EXPRESSION_DEPTH_MAX levels of parentheses.
 * Invariants: parsing is linear in the input and recursion is bounded by the depth limit, so
 * no input can hang or overflow the stack; the broker parses once per request and evaluates
 * once per distinct tag set, never per record.
 */
import { ErrorCode, SluiceError } from './errors.ts';
import { isTagByte, TAG_BYTES_MAX, tagProblem } from './tags.ts';

export const TAG_EXPRESSION_BYTES_MAX = 1024;
export const TAG_EXPRESSION_TAGS_MAX = 64;
export const TAG_EXPRESSION_DEPTH_MAX = 16;

export type TagNode =
  | { op: 'tag'; tag: string }
  | { op: 'not'; arg: TagNode }
  | { op: 'and' | 'or'; args: TagNode[] };

export class TagExpression {
  private constructor(
    readonly source: string,
    readonly root: TagNode,
    /** Distinct tags the expression names. */
    readonly tags: readonly string[],
  ) {}

  /** Parses `source`; throws SluiceError(INVALID_TAG_EXPRESSION) naming the problem. */
  static parse(source: string): TagExpression {
    if (typeof source !== 'string') throw bad('the tag expression must be a string');
    if (source.length > TAG_EXPRESSION_BYTES_MAX) throw bad(`the tag expression has more than ${TAG_EXPRESSION_BYTES_MAX} characters`);
    const p = new Parser(source);
    const root = p.or(0);
    p.skipSpace();
    if (p.pos < source.length) throw p.error(p.peek(')') ? 'a ")" without its "("' : 'expected "&&", "||" or the end');
    return new TagExpression(source, root, [...p.seen]);
  }

  /** `a || b || ...` of the given tags (the consumer option `tags`). */
  static anyOf(tags: readonly string[]): TagExpression {
    if (!Array.isArray(tags) || tags.length === 0) throw bad('tags must be a non-empty array');
    return TagExpression.parse(tags.join(' || '));
  }

  /** Whether a batch with this tag set (a Set of its tags) matches. */
  matches(tagSet: ReadonlySet<string>): boolean {
    return evaluate(this.root, tagSet);
  }
}

function evaluate(n: TagNode, set: ReadonlySet<string>): boolean {
  switch (n.op) {
    case 'tag': return set.has(n.tag);
    case 'not': return !evaluate(n.arg, set);
    case 'and': return n.args.every((a) => evaluate(a, set));
    case 'or': return n.args.some((a) => evaluate(a, set));
  }
}

function bad(detail: string): SluiceError {
  return new SluiceError(ErrorCode.INVALID_TAG_EXPRESSION, detail);
}

class Parser {
  pos = 0;
  tagCount = 0;
  readonly seen = new Set<string>();
  constructor(private readonly s: string) {}

  error(what: string): SluiceError {
    return bad(`${what} at character ${this.pos + 1} of the tag expression ${JSON.stringify(this.s.length > 80 ? this.s.slice(0, 80) + '...' : this.s)}`);
  }

  skipSpace(): void {
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.pos++;
    }
  }

  peek(tok: string): boolean {
    return this.s.startsWith(tok, this.pos);
  }

  or(depth: number): TagNode {
    const args = [this.and(depth)];
    for (;;) {
      this.skipSpace();
      if (!this.peek('||')) break;
      this.pos += 2;
      args.push(this.and(depth));
    }
    return args.length === 1 ? args[0]! : { op: 'or', args };
  }

  and(depth: number): TagNode {
    const args = [this.unary(depth)];
    for (;;) {
      this.skipSpace();
      if (!this.peek('&&')) break;
      this.pos += 2;
      args.push(this.unary(depth));
    }
    return args.length === 1 ? args[0]! : { op: 'and', args };
  }

  unary(depth: number): TagNode {
    let nots = 0;
    for (;;) {
      this.skipSpace();
      if (!this.peek('!')) break;
      this.pos++;
      nots++;
    }
    let n = this.primary(depth);
    // `!!a` is `a`: only the parity matters, so a long run of `!` costs no recursion.
    if (nots % 2 === 1) n = { op: 'not', arg: n };
    return n;
  }

  primary(depth: number): TagNode {
    this.skipSpace();
    if (this.pos >= this.s.length) throw this.error('expected a tag, "!" or "(" but the expression ends');
    if (this.peek('(')) {
      if (depth + 1 > TAG_EXPRESSION_DEPTH_MAX) throw this.error(`parentheses nested deeper than ${TAG_EXPRESSION_DEPTH_MAX}`);
      this.pos++;
      const inner = this.or(depth + 1);
      this.skipSpace();
      if (!this.peek(')')) throw this.error('expected ")"');
      this.pos++;
      return inner;
    }
    const start = this.pos;
    while (this.pos < this.s.length && isTagByte(this.s.charCodeAt(this.pos))) this.pos++;
    if (this.pos === start) throw this.error(`unexpected ${JSON.stringify(this.s[this.pos])}: expected a tag, "!" or "("`);
    const tag = this.s.slice(start, this.pos);
    if (tag.length > TAG_BYTES_MAX) {
      this.pos = start;
      throw this.error(tagProblem(tag));
    }
    if (++this.tagCount > TAG_EXPRESSION_TAGS_MAX) throw this.error(`more than ${TAG_EXPRESSION_TAGS_MAX} tags`);
    this.seen.add(tag);
    return { op: 'tag', tag };
  }
}
