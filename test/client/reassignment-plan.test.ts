import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planReassignment, type PartitionReplicas } from '../../client/cli/reassignment-plan.ts';

function loads(parts: PartitionReplicas[], brokers: number[]): number[] {
  return brokers.map((b) => parts.filter((p) => p.replicas.includes(b)).length);
}

function apply(parts: PartitionReplicas[], moves: PartitionReplicas[]): PartitionReplicas[] {
  return parts.map((p) => moves.find((m) => m.topic === p.topic && m.partition === p.partition) ?? p);
}

test('adding a broker moves just its fair share onto it', () => {
  const parts = Array.from({ length: 6 }, (_, i) => ({ topic: 't', partition: i, replicas: [1 + (i % 3), 1 + ((i + 1) % 3)] }));
  const moves = planReassignment(parts, [1, 2, 3, 4]);
  assert.equal(moves.length, 3, '12 replicas over 4 brokers: 3 move to the new one');
  assert.deepEqual(loads(apply(parts, moves), [1, 2, 3, 4]), [3, 3, 3, 3]);
});

test('property: after a plan, replicas are distinct per partition, none on a drained broker, loads within one', () => {
  fc.assert(
    fc.property(fc.integer({ min: 3, max: 6 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 2 }), (n, count, rf) => {
      const brokers = Array.from({ length: n }, (_, i) => i + 1);
      const parts = Array.from({ length: count }, (_, i) => ({ topic: 't', partition: i, replicas: Array.from({ length: rf }, (_, r) => brokers[(i + r) % (n - 1)]!) }));
      const drained = new Set([n - 1]);
      const after = apply(parts, planReassignment(parts, brokers, drained));
      for (const p of after) {
        assert.equal(new Set(p.replicas).size, p.replicas.length);
        assert.ok(!p.replicas.includes(n - 1));
      }
      const l = loads(after, brokers.filter((b) => !drained.has(b)));
      assert.ok(Math.max(...l) - Math.min(...l) <= 1, `loads ${l}`);
    }),
  );
});
