// The aborted-transaction lookup of read_committed fetches (SPEC §6.7) against a brute-force
// reading of the same log, over random interleavings of transactions, commits and aborts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { config, pbatch, recordingLogger, tempDir } from './helpers.ts';

type Op = { producer: number; end: 'none' | 'commit' | 'abort' };

test('abortedTransactions(fetchOffset, lastOffset) equals the brute-force answer, after appends and after a reopen', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.record({ producer: fc.integer({ min: 1, max: 4 }), end: fc.constantFrom<Op['end']>('none', 'none', 'commit', 'abort') }), { minLength: 1, maxLength: 40 }), fc.nat(), fc.nat(), fc.boolean(), async (ops, a, b, narrow) => {
      const t = tempDir();
      try {
        let log = PartitionLog.open(t.dir, config({ 'segment.bytes': '1024' }), { cleanShutdown: true, logger: recordingLogger() });
        const seq = new Map<number, number>();
        const open = new Map<number, number>();
        const truth: Array<{ producerId: number; firstOffset: number; lastOffset: number }> = [];
        for (const op of ops) {
          const s = seq.get(op.producer) ?? 0;
          const r = log.append(pbatch(op.producer, 0, s, 1, { transactional: true }));
          seq.set(op.producer, s + 1);
          if (!open.has(op.producer)) open.set(op.producer, r.baseOffset);
          if (op.end !== 'none') {
            const at = log.appendControl({ producerId: op.producer, producerEpoch: 0, committed: op.end === 'commit', coordinatorEpoch: 0 });
            if (op.end === 'abort') truth.push({ producerId: op.producer, firstOffset: open.get(op.producer)!, lastOffset: at });
            open.delete(op.producer);
          }
        }
        const end = log.logEndOffset;
        const fetchOffset = a % (end + 1);
        // Narrow ranges (a fetch of a few batches) are where a walk that stops too early shows.
        const last = fetchOffset + (narrow ? b % 4 : b % (end + 1));
        const expected = truth.filter((x) => x.lastOffset >= fetchOffset && x.firstOffset <= last);
        assert.deepEqual(log.abortedTransactions(fetchOffset, last), expected);
        await log.close();
        log = PartitionLog.open(t.dir, config({ 'segment.bytes': '1024' }), { cleanShutdown: true, logger: recordingLogger() });
        assert.deepEqual(log.abortedTransactions(fetchOffset, last), expected);
        assert.equal(log.producers.firstUnstableOffset(), open.size === 0 ? -1 : Math.min(...open.values()));
        await log.close();
      } finally {
        t.cleanup();
      }
    }),
    { numRuns: 150 },
  );
});
