import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { rangeAssignor, roundRobinAssignor, uniformAssignor, type Assignment, type Assignor } from '../../../server/group/assignors.ts';

function counts(a: Assignment): number[] {
  return [...a.values()].map((topics) => [...topics.values()].reduce((n, l) => n + l.length, 0));
}

function owners(a: Assignment): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [m, topics] of a) for (const [t, parts] of topics) for (const p of parts) out.set(`${t}/${p}`, [...(out.get(`${t}/${p}`) ?? []), m]);
  return out;
}

const members = (n: number, topics: string[]) => new Map(Array.from({ length: n }, (_, i) => [`m${i}`, topics] as const));

for (const [name, assignor] of [['uniform', uniformAssignor], ['range', rangeAssignor], ['round-robin', roundRobinAssignor]] as Array<[string, Assignor]>) {
  test(`${name}: every partition to exactly one subscribed member, balanced for identical subscriptions`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 40 }), (n, partitions) => {
        const a = assignor({ members: members(n, ['t']), partitionCounts: new Map([['t', partitions]]), previous: new Map() });
        const o = owners(a);
        assert.equal(o.size, partitions);
        for (const list of o.values()) assert.equal(list.length, 1);
        const c = counts(a);
        assert.ok(Math.max(...c) - Math.min(...c) <= 1, `balanced: ${c}`);
      }),
    );
  });
}

test('uniform is sticky: a joining member takes partitions only from the most loaded', () => {
  const before = uniformAssignor({ members: members(3, ['t']), partitionCounts: new Map([['t', 6]]), previous: new Map() });
  const after = uniformAssignor({ members: members(4, ['t']), partitionCounts: new Map([['t', 6]]), previous: before });
  let moved = 0;
  for (const [m, topics] of before) for (const p of topics.get('t') ?? []) if (!(after.get(m)!.get('t') ?? []).includes(p)) moved++;
  assert.equal(moved, 1, 'one of six partitions moves to the new member (6 = 2+2+1+1)');
  assert.deepEqual(counts(after).sort(), [1, 1, 2, 2]);
});

test('uniform: a leaving member’s partitions spread over the others, nothing else moves', () => {
  const before = uniformAssignor({ members: members(3, ['t']), partitionCounts: new Map([['t', 6]]), previous: new Map() });
  const remaining = new Map([...members(3, ['t'])].filter(([m]) => m !== 'm1'));
  const after = uniformAssignor({ members: remaining, partitionCounts: new Map([['t', 6]]), previous: before });
  for (const m of ['m0', 'm2']) for (const p of before.get(m)!.get('t')!) assert.ok(after.get(m)!.get('t')!.includes(p));
  assert.deepEqual(counts(after), [3, 3]);
});

test('range keeps co-partitioned topics together; mixed subscriptions only get their topics', () => {
  const a = rangeAssignor({ members: members(2, ['a', 'b']), partitionCounts: new Map([['a', 4], ['b', 4]]), previous: new Map() });
  assert.deepEqual(a.get('m0')!.get('a'), a.get('m0')!.get('b'));
  const mixed = uniformAssignor({ members: new Map([['x', ['a']], ['y', ['b']]]), partitionCounts: new Map([['a', 3], ['b', 2]]), previous: new Map() });
  assert.deepEqual([...mixed.get('x')!.keys()], ['a']);
  assert.deepEqual([...mixed.get('y')!.keys()], ['b']);
});
