/**
 * Produce: the append path from socket to disk. Each partition's record set is a slice of
 * the request frame, handed to Partition.appendAsLeader (partition/partition.ts), whose
 * PartitionLog.append validates it, rewrites baseOffset in place and writes those same bytes.
 * Nothing here decodes a record. This file owns the request-level checks and the
 * acknowledgement (acks, fsync, replication, timeout); the partition decides the rest.
 */
import type { ProduceRequest, ProduceResponse, ProducePartitionResult, ProduceTopicResult } from '../../protocol/apis/produce.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { CloseConnection, NO_REPLY, type HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';

/**
 * Waits for a condition of the acknowledgement (fsync, replication) up to timeoutMs; on
 * timeout or failure the partition's result says so (the first failure wins).
 */
async function settle(done: Promise<void>, result: ProducePartitionResult, timeoutMs: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), Math.max(timeoutMs, 0))));
  try {
    const outcome = await Promise.race([done, timedOut]);
    if (outcome === 'timeout' && result.errorCode === 0) {
      result.errorCode = ErrorCode.REQUEST_TIMED_OUT;
      result.errorMessage = `appended at ${result.baseOffset} but not yet ${what} after ${timeoutMs} ms`;
    }
  } catch (e) {
    if (result.errorCode !== 0) return;
    result.errorCode = e instanceof SluiceError ? e.code : ErrorCode.STORAGE_ERROR;
    result.errorMessage = (e as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

export async function handleProduce(ctx: BrokerContext, req: ProduceRequest, data: Buffer): Promise<HandlerResult> {
  let total = 0;
  for (const t of req.topics) for (const p of t.partitions) {
    if (p.recordsBytes < 0) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `recordsBytes ${p.recordsBytes} is negative`);
    total += p.recordsBytes;
  }
  if (total !== data.length) {
    throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `recordsBytes add up to ${total} but the data section has ${data.length} bytes`);
  }
  const acksValid = req.acks === 0 || req.acks === 1 || req.acks === -1;
  const waits: Promise<void>[] = [];
  const topics: ProduceTopicResult[] = [];
  let failed = false;
  let pos = 0;
  for (const t of req.topics) {
    const partitions: ProducePartitionResult[] = [];
    for (const p of t.partitions) {
      const records = data.subarray(pos, pos + p.recordsBytes);
      pos += p.recordsBytes;
      const result: ProducePartitionResult = { partition: p.partition, errorCode: 0, baseOffset: -1, logStartOffset: -1, errorMessage: null };
      partitions.push(result);
      if (!acksValid) {
        result.errorCode = ErrorCode.INVALID_REQUIRED_ACKS;
      } else if (ctx.shuttingDown) {
        result.errorCode = ErrorCode.BROKER_SHUTTING_DOWN;
      } else {
        try {
          // Internal topic, unknown partition, not the leader (SPEC §6.6 order); then, in
          // appendAsLeader, acks=all refused up front when too few replicas are in sync.
          const partition = ctx.topics.servable('produce', t.topic, p.partition);
          // A transactional batch that begins a transaction here is checked against its
          // coordinator's state (SPEC §6.6). `?.`: the in-process test stack has no coordinator.
          const appended = partition.appendAsLeader(records, req.acks, 'client', ctx.txn?.verifyTxnStart);
          const log = partition.log;
          result.baseOffset = appended.baseOffset;
          result.logStartOffset = log.logStartOffset;
          if (req.acks !== 0 && log.config.flushBeforeAck) waits.push(settle(log.waitForFlush(appended.lastOffset), result, req.timeoutMs, 'fsynced'));
          if (req.acks === -1) waits.push(settle(partition.waitForHighWatermark(appended.lastOffset + 1, req.timeoutMs), result, req.timeoutMs, 'replicated to every in-sync replica'));
        } catch (e) {
          if (!(e instanceof SluiceError)) throw e;
          result.errorCode = e.code;
          result.errorMessage = e.message;
          ctx.log.debug('produce refused', { topic: t.topic, partition: p.partition, error: e });
        }
      }
      if (result.errorCode !== 0) failed = true;
    }
    topics.push({ topic: t.topic, partitions });
  }
  if (req.acks === 0) {
    // As in Kafka: no response for acks=0; closing is the only way to tell the producer.
    if (failed) throw new CloseConnection();
    return NO_REPLY;
  }
  if (waits.length > 0) await Promise.all(waits);
  const response: ProduceResponse = { topics };
  return { control: response };
}
