/**
 * The idempotent producer against a scripted broker (scripted-producer-broker.ts, which
 * applies SPEC §8.5's dedup and sequence checks): InitProducerId before the first Produce,
 * per-partition sequence numbering, retries that neither duplicate nor reorder with several
 * requests in flight, the epoch bump with renumbering after UNKNOWN_PRODUCER_ID, fencing, the
 * fallback for a broker without InitProducerId, and the delivery setting's config rules.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer, ProducerConfigError, ProducerFencedError } from '../../client/producer.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { FAST, withBroker } from './scripted-producer-broker.ts';


test('idempotent by default: InitProducerId first, then each partition numbered from 0 by record count', async () => {
  await withBroker(2, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, ...FAST });
    assert.equal(p.idempotent, true);
    assert.equal(p.acks, -1);
    try {
      for (let round = 0; round < 3; round++) {
        const sends = [];
        for (let i = 0; i < 2 + round; i++) for (let part = 0; part < 2; part++) sends.push(p.send({ topic: 't', partition: part, value: `p${part}-r${round}-${i}` }));
        await Promise.all(sends);
      }
    } finally {
      await p.close();
    }
    assert.match(b.events[0]!, /^InitProducerId -1\/-1/);
    assert.equal(b.events.findIndex((e) => e.startsWith('Produce')) > 0, true);
    for (let part = 0; part < 2; part++) {
      const batches = b.log[part]!;
      assert.deepEqual(batches.map((x) => x.baseSequence), [0, 2, 5]);
      assert.deepEqual(batches.map((x) => [x.producerId, x.producerEpoch, x.transactional]), [[7, 0, false], [7, 0, false], [7, 0, false]]);
      assert.equal(b.values(part).length, 9);
    }
  });
});

test('idempotent: false sends plain batches (producerId -1) and no InitProducerId', async () => {
  await withBroker(1, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, idempotent: false, lingerMs: 0, ...FAST });
    try {
      await p.send({ topic: 't', value: 'x' });
    } finally {
      await p.close();
    }
    assert.deepEqual(b.initRequests, []);
    assert.deepEqual(b.log[0]!.map((x) => [x.producerId, x.producerEpoch, x.baseSequence]), [[-1, -1, -1]]);
  });
});

test('a lost response is resent with the same sequence and answered as a duplicate: each record once', async () => {
  await withBroker(1, async (b) => {
    // The first Produce is appended but its connection dies before the answer.
    b.beforeProduce = (_batch, nth) => (nth === 0 ? 'append-and-drop-connection' : null);
    const p = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, ...FAST });
    let offsets: number[];
    try {
      offsets = (await Promise.all(['a', 'b', 'c'].map((v) => p.send({ topic: 't', value: v })))).map((m) => m.offset);
      await p.send({ topic: 't', value: 'd' });
    } finally {
      await p.close();
    }
    assert.deepEqual(b.values(0), ['a', 'b', 'c', 'd']);
    assert.deepEqual(offsets, [0, 1, 2]);
    assert.ok(b.events.filter((e) => e.startsWith('Produce p0 seq 0')).length >= 2, b.events.join('\n'));
  });
});

test('with 5 requests in flight, a refused batch is resent first and later ones wait (OUT_OF_ORDER): log in send order, no duplicates', async () => {
  await withBroker(1, async (b) => {
    b.produceDelayMs = 20;
    let refused = false;
    // The second batch is refused once; the batches behind it then arrive with a gap.
    b.beforeProduce = (batch) => {
      if (!refused && batch.baseSequence > 0) {
        refused = true;
        return { errorCode: ErrorCode.NOT_ENOUGH_REPLICAS };
      }
      return null;
    };
    const p = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, maxInFlight: 5, ...FAST });
    const sent: string[] = [];
    const sends = [];
    try {
      for (let i = 0; i < 8; i++) {
        const v = `m${i}`;
        sent.push(v);
        sends.push(p.send({ topic: 't', value: v }));
        // A new turn of the event loop: one batch per send, each its own request.
        await new Promise((r) => setImmediate(r));
      }
      await Promise.all(sends);
    } finally {
      await p.close();
    }
    assert.deepEqual(b.values(0), sent);
    assert.ok(b.events.some((e) => e.endsWith(`-> ${ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER}`)), `expected batches refused for a gap:\n${b.events.join('\n')}`);
    assert.equal(b.initRequests.length, 1, 'OUT_OF_ORDER behind an unacknowledged batch is a plain retry, not an epoch bump');
  });
});

test('UNKNOWN_PRODUCER_ID: the epoch is bumped (same id) and the unacknowledged batches renumbered from 0', async () => {
  await withBroker(1, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, ...FAST });
    try {
      await p.send({ topic: 't', value: 'a' });
      await p.send({ topic: 't', value: 'b' });
      // The partition loses the producer's state (expiry): the next batch, seq 2, is unknown.
      b.forgetProducers(0);
      await Promise.all([p.send({ topic: 't', value: 'c' }), p.send({ topic: 't', value: 'd' })]);
      await p.send({ topic: 't', value: 'e' });
    } finally {
      await p.close();
    }
    assert.deepEqual(b.values(0), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(b.initRequests.map((r) => [r.producerId, r.producerEpoch]), [[-1, -1], [7, 0]]);
    assert.deepEqual(b.log[0]!.map((x) => [x.producerEpoch, x.baseSequence]), [[0, 0], [0, 1], [1, 0], [1, 2]]);
  });
});

test('OUT_OF_ORDER for the oldest unacknowledged batch (its predecessor failed for good): epoch bump and renumbering, not endless retries', async () => {
  await withBroker(1, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, ...FAST });
    try {
      // A non-retriable refusal: 'lost' (seq 1) fails, so seq 2 leaves a gap the broker refuses.
      b.beforeProduce = (batch) => (batch.values[0] === 'lost' ? { errorCode: ErrorCode.INVALID_REQUIRED_ACKS } : null);
      await p.send({ topic: 't', value: 'a' });
      await assert.rejects(p.send({ topic: 't', value: 'lost' }), (e: SluiceError) => e.code === ErrorCode.INVALID_REQUIRED_ACKS);
      const m = await p.send({ topic: 't', value: 'b' });
      assert.equal(m.offset, 1);
    } finally {
      await p.close();
    }
    assert.deepEqual(b.values(0), ['a', 'b']);
    assert.deepEqual(b.initRequests.map((r) => [r.producerId, r.producerEpoch]), [[-1, -1], [7, 0]]);
    assert.ok(b.events.some((e) => e === `Produce p0 seq 2 epoch 0 -> ${ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER}`), b.events.join('\n'));
    assert.deepEqual(b.log[0]!.map((x) => [x.producerEpoch, x.baseSequence]), [[0, 0], [1, 0]]);
  });
});

test('an epoch bump leaves a partition whose batch may be in the log (lost answer) on its old epoch: the resend is deduplicated, not written twice', async () => {
  await withBroker(2, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, ...FAST, retryBackoffMs: 300, retryBackoffMaxMs: 300 });
    try {
      await p.send({ topic: 't', partition: 0, value: 'a0' });
      await p.send({ topic: 't', partition: 1, value: 'b0' });
      b.forgetProducers(1);
      let dropped = false;
      b.beforeProduce = (batch) => {
        if (batch.values[0] !== 'a1' || dropped) return null;
        dropped = true;
        return 'append-and-drop-connection';
      };
      const a1 = p.send({ topic: 't', partition: 0, value: 'a1' });
      // a1 is written, its answer lost: it waits out its backoff while b1 forces the bump.
      await new Promise((r) => setTimeout(r, 50));
      const b1 = p.send({ topic: 't', partition: 1, value: 'b1' });
      await Promise.all([a1, b1]);
    } finally {
      await p.close();
    }
    assert.deepEqual(b.values(0), ['a0', 'a1']);
    assert.deepEqual(b.values(1), ['b0', 'b1']);
    assert.deepEqual(b.initRequests.map((r) => r.producerEpoch), [-1, 0], 'one bump');
    assert.deepEqual(b.log[1]!.map((x) => [x.producerEpoch, x.baseSequence]), [[0, 0], [1, 0]]);
  });
});

test('INVALID_PRODUCER_EPOCH fences the producer: pending sends and every later send fail with ProducerFencedError', async () => {
  await withBroker(2, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, ...FAST });
    try {
      await p.send({ topic: 't', partition: 0, value: 'ok' });
      b.beforeProduce = () => ({ errorCode: ErrorCode.INVALID_PRODUCER_EPOCH });
      const results = await Promise.allSettled([p.send({ topic: 't', partition: 0, value: 'x' }), p.send({ topic: 't', partition: 1, value: 'y' })]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok((r as PromiseRejectedResult).reason instanceof ProducerFencedError, String((r as PromiseRejectedResult).reason));
      }
      await assert.rejects(p.send({ topic: 't', partition: 0, value: 'later' }), ProducerFencedError);
    } finally {
      await p.close();
    }
    assert.deepEqual(b.values(0), ['ok']);
  });
});

test('a broker without InitProducerId: default idempotence falls back to plain batches; explicit idempotence fails', async () => {
  await withBroker(1, async (b) => {
    b.initUnsupported = true;
    const p = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, ...FAST });
    try {
      await p.send({ topic: 't', value: 'a' });
    } finally {
      await p.close();
    }
    assert.deepEqual(b.log[0]!.map((x) => x.producerId), [-1]);
    const q = new Producer({ bootstrap: b.bootstrap, lingerMs: 0, idempotent: true, ...FAST });
    try {
      await assert.rejects(q.send({ topic: 't', value: 'b' }), (e: SluiceError) => e.code === ErrorCode.UNKNOWN_API);
    } finally {
      await q.close();
    }
  });
});

test('delivery setting and idempotence config rules', () => {
  const bootstrap = '127.0.0.1:1';
  const mk = (o: object) => new Producer({ bootstrap, ...o });
  const d = mk({});
  assert.deepEqual([d.delivery, d.acks, d.idempotent, d.maxInFlight], ['at-least-once', -1, true, 5]);
  const amo = mk({ delivery: 'at-most-once' });
  assert.deepEqual([amo.acks, amo.retries, amo.idempotent], [1, 0, false]);
  // Default idempotence yields to an explicit acks 1 (Kafka >= 3.0.1) ...
  assert.deepEqual([mk({ acks: 1 }).idempotent, mk({ acks: 0 }).idempotent], [false, false]);
  // ... but explicit idempotence with acks 1 is a configuration error.
  assert.throws(() => mk({ idempotent: true, acks: 1 }), ProducerConfigError);
  assert.throws(() => mk({ transactionalId: 'x', acks: 1 }), ProducerConfigError);
  assert.throws(() => mk({ idempotent: true, maxInFlight: 6 }), ProducerConfigError);
  assert.equal(mk({ maxInFlight: 6 }).idempotent, false);
  // The latency profile's 10 in flight is capped at 5 for idempotence.
  assert.deepEqual([mk({ profile: 'latency' }).idempotent, mk({ profile: 'latency' }).maxInFlight], [true, 5]);
  assert.throws(() => mk({ delivery: 'exactly-once' }), /transactionalId/);
  assert.throws(() => mk({ delivery: 'exactly-once', transactionalId: 't', idempotent: false }), ProducerConfigError);
  assert.throws(() => mk({ delivery: 'twice' }), ProducerConfigError);
  const eos = mk({ delivery: 'exactly-once', transactionalId: 'tx' });
  assert.deepEqual([eos.acks, eos.idempotent, eos.transactionalId], [-1, true, 'tx']);
  for (const p of [d, amo, eos]) void p.close();
});
