// A real broker process whose segment fsyncs fail (SLUICE_TEST_LOG_FAULTS, server/log/log-io.ts):
// a produce waiting on flush.before.ack is not acknowledged, the partition refuses further
// writes with STORAGE_ERROR, other requests still get answers, and a restart on a healthy
// disk serves the partition again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchResponse, ProduceResponse } from '../../protocol/apis/index.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { Connection } from '../../client/connection.ts';
import { startBroker } from '../helpers/broker-process.ts';

const enc = new TextEncoder();

function batch(value: string): Uint8Array {
  return buildBatch([{ key: null, value: enc.encode(value), timestamp: Date.now() }]);
}

async function produce(c: Connection, topic: string, b: Uint8Array): Promise<number> {
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: 1, timeoutMs: 10_000, topics: [{ topic, partitions: [{ partition: 0, recordsBytes: b.length }] }] }, [b]);
  return r.control.topics[0]!.partitions[0]!.errorCode;
}

test('broker with failing segment fsyncs: the flush.before.ack produce is refused, later ones too; a healthy restart serves again', async () => {
  const faults = JSON.stringify([{ op: 'fsync', asyncOnly: true }]);
  const broker = await startBroker({ env: { SLUICE_TEST_LOG_FAULTS: faults } });
  let restarted: Awaited<ReturnType<typeof startBroker>> | null = null;
  try {
    const c = await Connection.connect(broker.host, broker.port, { clientId: 'storage-faults' });
    const created = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic: 'durable', partitions: 1, replicationFactor: 1, configs: { 'flush.before.ack': 'true' } }], validateOnly: false });
    assert.equal(created.control.topics[0].errorCode, 0, JSON.stringify(created.control));
    assert.equal(await produce(c, 'durable', batch('first')), ErrorCode.STORAGE_ERROR, 'not acknowledged: its fsync failed');
    assert.equal(await produce(c, 'durable', batch('second')), ErrorCode.STORAGE_ERROR, 'the partition refuses writes');
    const f = await c.send<FetchResponse>(ApiKey.FETCH, { maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [{ topic: 'durable', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }] });
    assert.equal(f.control.topics[0]!.partitions[0]!.errorCode, 0, 'reads are still answered');
    assert.match(broker.log(), /fsync failed; the partition refuses writes/);
    c.close();
    await broker.stop();

    restarted = await startBroker({ dataDir: broker.dataDir });
    const c2 = await Connection.connect(restarted.host, restarted.port, { clientId: 'storage-faults' });
    assert.equal(await produce(c2, 'durable', batch('third')), 0, 'recovered at restart on a healthy disk');
    c2.close();
  } finally {
    await restarted?.stop();
    await broker.stop();
    broker.cleanup();
  }
});
