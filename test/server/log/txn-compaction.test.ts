// Compaction and transactions (SPEC §7.3): nothing at or past the last stable offset is
// compacted, control batches always stay, and an aborted record never hides an older value
// of its key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchSizeAt, buildBatch, decodeRecords, isControlAt, lastOffsetAt } from '../../../protocol/record-batch.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { config, readRaw, recordingLogger, tempDir } from './helpers.ts';

const enc = new TextEncoder();
const T0 = 1_700_000_000_000;

function keyed(key: string, value: string, producer?: { producerId: number; seq: number; transactional: boolean }): Buffer {
  return Buffer.from(buildBatch([{ key: enc.encode(key), value: enc.encode(value), timestamp: T0 }], T0, producer ? { producerId: producer.producerId, producerEpoch: 0, baseSequence: producer.seq, transactional: producer.transactional } : undefined));
}

function survivors(raw: Buffer): Array<string> {
  const out: string[] = [];
  for (let p = 0; p < raw.length; p += batchSizeAt(raw, p)) {
    if (isControlAt(raw, p)) {
      out.push(`control@${lastOffsetAt(raw, p)}`);
      continue;
    }
    for (const r of decodeRecords(raw, p)) out.push(`${new TextDecoder().decode(r.key!)}=${new TextDecoder().decode(r.value!)}@${r.offset}`);
  }
  return out;
}

test('compaction keeps control batches, ignores aborted records for "latest", and stops at the last stable offset', async () => {
  const t = tempDir();
  try {
    const log = PartitionLog.open(t.dir, config({ 'cleanup.policy': 'compact', 'segment.bytes': '1024', 'index.interval.bytes': '128' }), { cleanShutdown: true, logger: recordingLogger() });
    log.append(keyed('k', 'committed-1'), T0); // 0
    log.append(keyed('k', 'aborted', { producerId: 5, seq: 0, transactional: true }), T0); // 1
    log.appendControl({ producerId: 5, producerEpoch: 0, committed: false, coordinatorEpoch: 0 }, T0); // 2
    log.append(keyed('j', 'x'), T0); // 3
    log.append(keyed('j', 'y'), T0); // 4
    log.append(keyed('n', 'aborted', { producerId: 7, seq: 0, transactional: true }), T0); // 5
    log.appendControl({ producerId: 7, producerEpoch: 0, committed: false, coordinatorEpoch: 0 }, T0); // 6: same marker key as 2
    for (let i = 0; i < 20; i++) log.append(keyed(`f${i}`, 'fill'.repeat(10)), T0); // 7..26
    log.append(keyed('m', 'open', { producerId: 6, seq: 0, transactional: true }), T0); // 27: open, the LSO
    log.append(keyed('q', '1'), T0); // 28
    log.append(keyed('q', '2'), T0); // 29
    for (let i = 0; i < 40; i++) log.append(keyed(`g${i}`, 'fill'.repeat(10)), T0);
    await log.flush();
    assert.equal(log.lastStableOffset, 27);
    assert.ok(log.segmentCount > 3);
    const r = await log.compact(T0);
    assert.ok(r.segmentsRewritten >= 1, 'the first segment was compacted');
    const after = survivors(await readRaw(log));
    assert.ok(!after.includes('j=x@3'), 'compaction ran below the LSO');
    assert.ok(after.includes('k=committed-1@0'), `the committed value survives the aborted one: ${after.slice(0, 8)}`);
    assert.ok(after.includes('k=aborted@1'), 'aborted records stay (consumers drop them)');
    assert.ok(after.includes('control@2') && after.includes('control@6'), 'control batches stay');
    assert.ok(after.includes('q=1@28'), 'nothing at or past the LSO is compacted');
  } finally {
    t.cleanup();
  }
});
