// The marker sender against a real broker process (SPEC §6.23, §7.6): one request per leader
// for every marker waiting for it, retries with a doubling, capped backoff while the leader
// does not take them (a broker without WriteTxnMarkers answers UNKNOWN_API: retried, never
// given up), the queue bound, cancel, and markers for partitions that no longer exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admin } from '../../../client/admin.ts';
import { Connection } from '../../../protocol/connection.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { TxnMarkerSender } from '../../../server/txn/txn-marker-sender.ts';
import { startBroker } from '../../helpers/broker-process.ts';
import { supportsWriteTxnMarkers } from '../../helpers/txn-requests.ts';
import { recordingLogger } from '../log/helpers.ts';

const marker = { producerId: 7, producerEpoch: 0, committed: true, coordinatorEpoch: 0 };

test('markers: batched per leader, retried with capped backoff until taken, bounded, cancellable', { timeout: 60_000 }, async (t) => {
  const b = await startBroker();
  const admin = new Admin({ bootstrap: b.bootstrap, requestTimeoutMs: 5000 });
  const conn = await Connection.connect(b.host, b.port);
  let leader = 0;
  // The cluster metadata as the broker's Metadata answer gives it: one live broker (id 0) leading 'orders'.
  const metadata = {
    getTopic: (name: string) => (name === 'orders' ? { name, id: 'x', partitions: 2, replicationFactor: 1, configs: {}, createdAtMs: 0 } : undefined),
    partitionState: () => ({ leader, leaderEpoch: 0, replicas: [0], isr: [0], partitionEpoch: 0 }),
    liveBrokers: () => [{ brokerId: 0, host: b.host, port: b.port, startedAtMs: 0 }],
  };
  const sender = new TxnMarkerSender(1, metadata, { backoffMs: 20, backoffMsMax: 160, requestTimeoutMs: 5000, queuedPartitionsMax: 4, requestPartitionsMax: 100 }, recordingLogger());
  try {
    await admin.createTopics([{ topic: 'orders', partitions: 2, replicationFactor: 1, configs: {} }]);
    const handled = await supportsWriteTxnMarkers(conn);

    // Partitions of a topic that does not exist (deleted) need no marker.
    await sender.send(marker, [{ topic: 'gone', partitions: [0, 1] }], 0);
    assert.equal(sender.requestsSent, 0);

    // Over the bound: refused at once, nothing queued.
    await assert.rejects(sender.send(marker, [{ topic: 'orders', partitions: [0, 1] }, { topic: 'gone', partitions: [0, 1, 2] }], 0), (e: { code?: number }) => e.code === ErrorCode.COORDINATOR_NOT_AVAILABLE);
    assert.equal(sender.queuedPartitions, 0);

    const a = sender.send(marker, [{ topic: 'orders', partitions: [0] }], 0);
    const c = sender.send({ ...marker, producerId: 8, committed: false }, [{ topic: 'orders', partitions: [1] }], 1);
    if (handled) {
      await Promise.all([a, c]);
      assert.equal(sender.requestsSent, 1, 'both markers went in one request to their leader');
      t.diagnostic('WriteTxnMarkers handled: both markers written in one request');
      return;
    }
    const outcomeA = a.then(() => 'resolved', (e: { code?: number }) => e.code);
    const outcomeC = c.then(() => 'resolved', (e: { code?: number }) => e.code);
    await new Promise((r) => setTimeout(r, 1200));
    // Backoff 20, 40, 80, 160, 160, ... ms: about 9 attempts in 1.2 s, each one request for both markers.
    t.diagnostic(`UNKNOWN_API from the broker: ${sender.requestsSent} requests in 1.2 s, ${sender.retries} failed entries`);
    assert.ok(sender.requestsSent >= 4 && sender.requestsSent <= 14, `${sender.requestsSent} requests`);
    assert.equal(sender.retries, 2 * sender.requestsSent, 'every request carried both markers');
    assert.equal(sender.queuedPartitions, 2, 'still queued: never given up');

    // No leader: nothing is sent, the entries wait.
    leader = -1;
    const before = sender.requestsSent;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(sender.requestsSent, before, 'no request without a leader');

    sender.cancel(1);
    assert.equal(await outcomeC, ErrorCode.NOT_COORDINATOR);
    assert.equal(sender.queuedPartitions, 1, 'cancel drops only its owner\'s markers');
    sender.cancel();
    assert.equal(await outcomeA, ErrorCode.NOT_COORDINATOR);
  } finally {
    sender.stop();
    conn.close();
    await admin.close().catch(() => {});
    await b.kill();
    b.cleanup();
  }
});
