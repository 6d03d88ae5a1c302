/**
 * The transactional producer against a scripted broker (scripted-producer-broker.ts):
 * FindCoordinator 'transaction' + InitProducerId with the transactional id, AddPartitionsToTxn
 * before each partition's first batch of a transaction (one request for the partitions of a
 * turn), the transactional bit, EndTxn only after every batch was acknowledged, abort on a
 * throwing transaction(fn), sendOffsets (AddOffsetsToTxn + TxnOffsetCommit with the member's
 * id and epoch from groupMetadata()), retried coordinator errors, TransactionAbortableError for
 * a fenced member, ProducerFencedError for a fenced producer, exactly-once implicit transactions.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Producer, ProducerFencedError, TransactionAbortableError } from '../../client/producer.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { FAST, withBroker } from './scripted-producer-broker.ts';


test('transaction(fn): init at the coordinator, AddPartitionsToTxn before each partition\'s first batch, transactional batches, EndTxn commit after the acks', async () => {
  await withBroker(3, async (b) => {
    // The batches are ready long before the coordinator answers: they must wait for it.
    b.addPartitionsDelayMs = 30;
    const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-1', lingerMs: 0, ...FAST });
    try {
      await p.transaction(async (tx) => {
        await Promise.all([tx.send({ topic: 't', partition: 0, value: 'a' }), tx.send({ topic: 't', partition: 1, value: 'b' })]);
        await tx.send({ topic: 't', partition: 0, value: 'c' });
        await tx.send({ topic: 't', partition: 2, value: 'd' });
      });
      await p.transaction(async (tx) => {
        await tx.send({ topic: 't', partition: 1, value: 'e' });
      });
    } finally {
      await p.close();
    }
    assert.deepEqual(b.initRequests, [{ transactionalId: 'tx-1', producerId: -1, producerEpoch: -1 }]);
    const ev = b.events.map((e) => e.replace(/ -> .*$/, ''));
    assert.deepEqual(ev, [
      'FindCoordinator transaction',
      'InitProducerId -1/-1',
      'AddPartitionsToTxn p0,p1',
      'Produce p0 seq 0 epoch 0',
      'Produce p1 seq 0 epoch 0',
      'Produce p0 seq 1 epoch 0',
      'AddPartitionsToTxn p2',
      'Produce p2 seq 0 epoch 0',
      'EndTxn commit',
      'AddPartitionsToTxn p1',
      'Produce p1 seq 1 epoch 0',
      'EndTxn commit',
    ]);
    assert.ok(b.log.flat().every((x) => x.transactional && x.producerId === 7));
  });
});

test('a throwing transaction(fn) is aborted (EndTxn abort) and rethrows; the producer goes on with the next', async () => {
  await withBroker(1, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-2', lingerMs: 0, ...FAST });
    try {
      await assert.rejects(p.transaction(async (tx) => {
        await tx.send({ topic: 't', value: 'a' });
        throw new Error('processing failed');
      }), /processing failed/);
      await p.transaction(async (tx) => {
        await tx.send({ topic: 't', value: 'b' });
      });
    } finally {
      await p.close();
    }
    assert.deepEqual(b.events.filter((e) => e.startsWith('EndTxn')), ['EndTxn abort', 'EndTxn commit']);
    // Nothing was left unacknowledged by the abort: no epoch bump, sequences continue.
    assert.deepEqual(b.log[0]!.map((x) => [x.producerEpoch, x.baseSequence]), [[0, 0], [0, 1]]);
  });
});

test('abort with records not yet sent fails them, and bumps the epoch so the next transaction starts at sequence 0', async () => {
  await withBroker(1, async (b) => {
    // lingerMs 1000: a record stays in its open batch until flushed or aborted.
    const q = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-3b', lingerMs: 1000, ...FAST });
    try {
      await q.begin();
      const first = q.send({ topic: 't', value: 'a' });
      await (q as any).flushSealed();
      await first;
      const unsent = q.send({ topic: 't', value: 'never' }).then(() => null, (e: Error) => e);
      await q.abort();
      assert.ok((await unsent) instanceof TransactionAbortableError);
      await q.transaction(async (tx) => {
        await tx.send({ topic: 't', value: 'b' });
      });
    } finally {
      await q.close();
    }
    const mine = b.log[0]!.filter((x) => x.producerId === b.producerId);
    assert.deepEqual(mine.map((x) => [x.values[0], x.producerEpoch, x.baseSequence]), [['a', 0, 0], ['b', 1, 0]]);
    assert.deepEqual(b.initRequests.slice(-2).map((r) => [r.transactionalId, r.producerId >= 0]), [['tx-3b', false], ['tx-3b', true]]);
  });
});

test('sendOffsets: AddOffsetsToTxn, then TxnOffsetCommit with the member from groupMetadata(); a stale member makes the transaction abortable', async () => {
  await withBroker(1, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-4', lingerMs: 0, ...FAST });
    const consumer = { groupMetadata: () => ({ groupId: 'g', memberId: 'm-1', memberEpoch: 3 }) };
    try {
      await p.transaction(async (tx) => {
        await tx.send({ topic: 't', value: 'out' });
        await tx.sendOffsets(consumer, [{ topic: 'in', partition: 0, offset: 42 }]);
      });
      assert.deepEqual((b.lastTxnOffsetCommit as any).topics, [{ topic: 'in', partitions: [{ partition: 0, offset: 42, metadata: null }] }]);
      assert.equal((b.lastTxnOffsetCommit as any).producerId, 7);
      b.txnErrors.set('TxnOffsetCommit', [ErrorCode.STALE_MEMBER_EPOCH]);
      let seen: unknown = null;
      await p.transaction(async (tx) => {
        await tx.sendOffsets({ groupId: 'g', memberId: 'm-1', memberEpoch: 3 }, [{ topic: 'in', partition: 0, offset: 43 }]);
      }).catch((e) => { seen = e; });
      assert.ok(seen instanceof TransactionAbortableError, String(seen));
      assert.equal((seen as SluiceError).code, ErrorCode.STALE_MEMBER_EPOCH);
    } finally {
      await p.close();
    }
    assert.deepEqual(b.events.filter((e) => /Offset|EndTxn/.test(e)), [
      'AddOffsetsToTxn g', 'TxnOffsetCommit g m-1@3', 'EndTxn commit',
      'AddOffsetsToTxn g', 'TxnOffsetCommit g m-1@3', 'EndTxn abort',
    ]);
  });
});

test('retriable coordinator errors are retried: CONCURRENT_TRANSACTIONS on InitProducerId, NOT_COORDINATOR on AddPartitionsToTxn, COORDINATOR_NOT_AVAILABLE on EndTxn', async () => {
  await withBroker(1, async (b) => {
    b.txnErrors.set('InitProducerId', [ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.CONCURRENT_TRANSACTIONS]);
    b.txnErrors.set('AddPartitionsToTxn', [ErrorCode.NOT_COORDINATOR]);
    b.txnErrors.set('EndTxn', [ErrorCode.COORDINATOR_NOT_AVAILABLE]);
    const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-5', lingerMs: 0, ...FAST });
    try {
      await p.transaction(async (tx) => {
        await tx.send({ topic: 't', value: 'a' });
      });
    } finally {
      await p.close();
    }
    assert.deepEqual(b.values(0), ['a']);
    assert.equal(b.events.filter((e) => e.startsWith('FindCoordinator')).length >= 2, true, 'NOT_COORDINATOR looks the coordinator up again');
    assert.deepEqual(b.events.filter((e) => e.startsWith('EndTxn')), [`EndTxn commit -> ${ErrorCode.COORDINATOR_NOT_AVAILABLE}`, 'EndTxn commit']);
  });
});

test('a batch pipelined behind an AddPartitionsToTxn that fails retriably is refused (CONCURRENT_TRANSACTIONS) and retried once the partition is added; the transaction commits', async () => {
  await withBroker(2, async (b) => {
    // The first transaction's AddPartitionsToTxn succeeds; the second's fails once, retriably.
    b.txnErrors.set('AddPartitionsToTxn', [ErrorCode.NONE, ErrorCode.CONCURRENT_TRANSACTIONS]);
    b.addPartitionsDelayMs = 20;
    const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-pipe', ...FAST });
    try {
      for (const v of ['a', 'b']) {
        let sent: Promise<unknown> = Promise.resolve();
        await p.transaction(async (tx) => {
          sent = tx.send({ topic: 't', partition: 1, value: v });
        });
        await sent;
      }
    } finally {
      await p.close();
    }
    const ev = b.events.map((e) => e.replace(/ -> @.*$/, ''));
    assert.deepEqual(ev.slice(2), [
      'AddPartitionsToTxn p1',
      'Produce p1 seq 0 epoch 0',
      'EndTxn commit',
      // Written before the answer (the first request on the connection succeeded), refused with
      // the request's retriable error, sent again after the retried request added the partition.
      'AddPartitionsToTxn p1',
      `Produce p1 seq 1 epoch 0 -> ${ErrorCode.CONCURRENT_TRANSACTIONS}`,
      'AddPartitionsToTxn p1',
      'Produce p1 seq 1 epoch 0',
      'EndTxn commit',
    ]);
    assert.deepEqual(b.values(1), ['a', 'b']);
  });
});

test('PRODUCER_FENCED from the coordinator: ProducerFencedError, and the producer refuses every later send', async () => {
  await withBroker(1, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-6', lingerMs: 0, ...FAST });
    try {
      await p.initTransactions();
      b.txnErrors.set('EndTxn', [ErrorCode.PRODUCER_FENCED]);
      await assert.rejects(p.transaction(async (tx) => {
        await tx.send({ topic: 't', value: 'a' });
      }), ProducerFencedError);
      await assert.rejects(p.send({ topic: 't', value: 'b' }), ProducerFencedError);
      await assert.rejects(p.begin(), ProducerFencedError);
    } finally {
      await p.close().catch(() => {});
    }
  });
});

test('a transactional producer refuses sends outside a transaction; exactly-once wraps them in one that flush() commits', async () => {
  await withBroker(1, async (b) => {
    const p = new Producer({ bootstrap: b.bootstrap, transactionalId: 'tx-7', lingerMs: 0, ...FAST });
    try {
      await p.initTransactions();
      await assert.rejects(p.send({ topic: 't', value: 'x' }), (e: SluiceError) => e.code === ErrorCode.INVALID_TXN_STATE);
    } finally {
      await p.close();
    }
    const q = new Producer({ bootstrap: b.bootstrap, delivery: 'exactly-once', transactionalId: 'tx-8', lingerMs: 0, ...FAST });
    try {
      await Promise.all([q.send({ topic: 't', value: 'a' }), q.send({ topic: 't', value: 'b' })]);
      await q.flush();
      await q.send({ topic: 't', value: 'c' });
    } finally {
      await q.close();
    }
    assert.deepEqual(b.values(0), ['a', 'b', 'c']);
    assert.deepEqual(b.events.filter((e) => e.startsWith('EndTxn')), ['EndTxn commit', 'EndTxn commit']);
    assert.ok(b.log[0]!.every((x) => x.transactional));
  });
});
