// InitProducerId without a transactionalId on a real broker process (SPEC §6.19): new ids
// unique across kill -9 restarts (the embedded store journals each reserved block), epoch
// bumps, and bad producerId/producerEpoch pairs refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from '../../../protocol/connection.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { startBroker, tempDir } from '../../helpers/broker-process.ts';
import { initProducerId, newProducerIds } from '../../helpers/txn-requests.ts';

test('producer ids stay unique across kill -9 restarts of a single broker, past block boundaries', { timeout: 120_000 }, async () => {
  const dataDir = tempDir();
  const seen = new Set<number>();
  let broker = await startBroker({ dataDir });
  try {
    for (let run = 0; run < 3; run++) {
      if (run > 0) {
        await broker.kill();
        broker = await startBroker({ dataDir, port: broker.port });
      }
      const conn = await Connection.connect(broker.host, broker.port);
      try {
        // 1,200 per run: more than one block of 1,000, so the next block is reserved mid-run.
        for (const id of await newProducerIds(conn, 1200)) {
          assert.ok(!seen.has(id), `producer id ${id} handed out twice (run ${run})`);
          seen.add(id);
        }
      } finally {
        conn.close();
      }
    }
    assert.equal(seen.size, 3600);
  } finally {
    await broker.kill();
    broker.cleanup();
  }
});

test('an epoch bump keeps the id; the last epoch gets a new id; bad pairs are refused', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const conn = await Connection.connect(broker.host, broker.port);
  try {
    const first = await initProducerId(conn);
    assert.equal(first.errorCode, 0);
    const bumped = await initProducerId(conn, { producerId: first.producerId, producerEpoch: 0 });
    assert.deepEqual(bumped, { errorCode: 0, errorMessage: null, producerId: first.producerId, producerEpoch: 1 });
    const last = await initProducerId(conn, { producerId: first.producerId, producerEpoch: 32767 });
    assert.equal(last.errorCode, 0);
    assert.notEqual(last.producerId, first.producerId);
    assert.equal(last.producerEpoch, 0);
    for (const [producerId, producerEpoch] of [[5, -1], [-1, 3], [-2, -1], [1, 32768], [1, -2]] as const) {
      const r = await initProducerId(conn, { producerId, producerEpoch });
      assert.equal(r.errorCode, ErrorCode.INVALID_PRODUCER_ID_MAPPING, `producerId ${producerId} producerEpoch ${producerEpoch}`);
      assert.equal(r.producerId, -1);
      assert.match(r.errorMessage ?? '', /producerId/);
    }
  } finally {
    conn.close();
    await broker.kill();
    broker.cleanup();
  }
});
