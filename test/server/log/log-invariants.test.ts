/**
 * What a breached invariant does (server/assert.ts): an InvariantError, not a SluiceError, and
 * the partition goes offline for writes (STORAGE_ERROR) while reads of what was written go on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { assert as invariant, InvariantError, isInvariantError } from '../../../server/assert.ts';
import { BatchCursor } from '../../../server/log/batch-cursor.ts';
import { PartitionLog } from '../../../server/log/partition-log.ts';
import { LogSegment } from '../../../server/log/segment.ts';
import { batch, config, recordingLogger, tempDir } from './helpers.ts';

test('assert throws an InvariantError, which is not a SluiceError; the message is built only on failure', () => {
  let built = 0;
  invariant(true, () => `never ${++built}`);
  assert.equal(built, 0);
  assert.throws(() => invariant(false, 'offsets go backwards'), (e: unknown) => e instanceof InvariantError && !(e instanceof SluiceError) && isInvariantError(e) && e.message === 'offsets go backwards');
});

test('the batch cursor refuses a step that could loop forever', () => {
  const c = new BatchCursor().reset(batch(2));
  assert.throws(() => c.advance(0), InvariantError);
  c.advance();
  assert.ok(c.done);
});

test('a breach inside the log takes the partition offline: InvariantError once, STORAGE_ERROR after, reads still served', async () => {
  const t = tempDir();
  const logger = recordingLogger();
  const append = LogSegment.prototype.append;
  try {
    const log = PartitionLog.open(t.dir, config(), { cleanShutdown: true, logger });
    const first = batch(3);
    log.append(first);
    // A segment that reports a write it did not make: the log end would no longer match the active segment.
    LogSegment.prototype.append = function () {};
    assert.throws(() => log.append(batch(2)), InvariantError);
    LogSegment.prototype.append = append;
    assert.ok(logger.lines.some((l) => l.level === 'error' && l.msg.startsWith('invariant breached')));
    assert.throws(() => log.append(batch(2)), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.STORAGE_ERROR);
    await assert.rejects(log.flush(), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.STORAGE_ERROR);
    const r = await log.read(0, 1 << 20);
    assert.ok(r.records.equals(first));
    assert.equal(log.logEndOffset, 3);
    await log.close().catch(() => undefined);
  } finally {
    LogSegment.prototype.append = append;
    t.cleanup();
  }
});
