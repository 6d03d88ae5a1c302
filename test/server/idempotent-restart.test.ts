// Idempotent produce across a broker crash, with a real broker process: batches acknowledged
// before a SIGKILL are recognised as duplicates after the restart (producer state recovered
// from the snapshot taken at the last segment roll plus a replay of the rest), so resending
// the same bytes gets the original offsets and appends nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ProduceResponse, ListOffsetsResponse } from '../../protocol/apis/index.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { buildBatch } from '../../protocol/record-batch.ts';
import { Connection } from '../../client/connection.ts';
import { startBroker, tempDir } from '../helpers/broker-process.ts';

const enc = new TextEncoder();
const PRODUCER_ID = 4242;

async function produce(c: Connection, batch: Uint8Array) {
  const r = await c.send<ProduceResponse>(ApiKey.PRODUCE, { acks: -1, timeoutMs: 5000, topics: [{ topic: 'idem', partitions: [{ partition: 0, recordsBytes: batch.length }] }] }, [batch]);
  return r.control.topics[0]!.partitions[0]!;
}

async function logEnd(c: Connection): Promise<number> {
  const r = await c.send<ListOffsetsResponse>(ApiKey.LIST_OFFSETS, { topics: [{ topic: 'idem', partitions: [{ partition: 0, timestamp: -1 }] }] });
  return r.control.topics[0]!.partitions[0]!.offset;
}

test('SIGKILL and restart: resending acknowledged batches gets their original offsets and appends nothing', async () => {
  const dataDir = tempDir();
  let b = await startBroker({ dataDir });
  try {
    let c = await Connection.connect(b.host, b.port);
    const created = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic: 'idem', partitions: 1, replicationFactor: 1, configs: { 'segment.bytes': '4096' } }], validateOnly: false });
    assert.equal(created.control.topics[0].errorCode, 0);
    const sent: Array<{ bytes: Uint8Array; offset: number }> = [];
    let seq = 0;
    for (let i = 0; i < 120; i++) {
      const count = 1 + (i % 3);
      const bytes = buildBatch(Array.from({ length: count }, (_, j) => ({ value: enc.encode(`b${i}-r${j}-${'x'.repeat(20)}`) })), Date.now(), { producerId: PRODUCER_ID, producerEpoch: 0, baseSequence: seq });
      seq += count;
      const p = await produce(c, bytes);
      assert.equal(p.errorCode, 0, p.errorMessage ?? '');
      sent.push({ bytes, offset: p.baseOffset });
    }
    const end = await logEnd(c);
    c.close();
    const partitionDir = join(dataDir, readdirSync(dataDir).find((n) => n.startsWith('idem-'))!);
    assert.ok(readdirSync(partitionDir).some((n) => n.endsWith('.snapshot')), 'segment rolls wrote snapshots');
    await b.kill();
    b = await startBroker({ dataDir });
    assert.match(b.log(), /no clean shutdown marker/);
    c = await Connection.connect(b.host, b.port);
    for (const s of sent.slice(-5)) {
      const p = await produce(c, s.bytes);
      assert.deepEqual([p.errorCode, p.baseOffset], [0, s.offset], p.errorMessage ?? '');
    }
    const old = await produce(c, sent[sent.length - 6]!.bytes);
    assert.equal(old.errorCode, ErrorCode.DUPLICATE_SEQUENCE_NUMBER);
    assert.equal(await logEnd(c), end, 'nothing appended by the resends');
    const next = await produce(c, buildBatch([{ value: enc.encode('next') }], Date.now(), { producerId: PRODUCER_ID, producerEpoch: 0, baseSequence: seq }));
    assert.deepEqual([next.errorCode, next.baseOffset], [0, end]);
    c.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});

test('a producer idle longer than --producer-id-expiration-ms is forgotten by the periodic check', async () => {
  const b = await startBroker({ args: ['--producer-id-expiration-ms', '200', '--retention-check-interval-ms', '50'] });
  try {
    const c = await Connection.connect(b.host, b.port);
    const created = await c.send<any>(ApiKey.CREATE_TOPICS, { topics: [{ topic: 'idem', partitions: 1, replicationFactor: 1, configs: {} }], validateOnly: false });
    assert.equal(created.control.topics[0].errorCode, 0);
    const batchAt = (seq: number) => buildBatch([{ value: enc.encode(`s${seq}`) }], Date.now(), { producerId: PRODUCER_ID, producerEpoch: 0, baseSequence: seq });
    assert.equal((await produce(c, batchAt(0))).errorCode, 0);
    assert.equal((await produce(c, batchAt(1))).errorCode, 0, 'known while active');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await produce(c, batchAt(2))).errorCode, ErrorCode.UNKNOWN_PRODUCER_ID);
    assert.equal((await produce(c, batchAt(0))).errorCode, 0, 'a new sequence from 0 is accepted');
    c.close();
  } finally {
    await b.stop();
    b.cleanup();
  }
});
