/**
 * Produce: the append path from socket to disk. Each partition's record set is a slice of
 * the request frame, handed to Partition.appendAsLeader (partition/partition.ts), whose
 * PartitionLog.append validates it, rewrites baseOffset in place and writes those same bytes.
 * Nothing here decodes a record. This file owns the request-level checks and the
 * acknowledgement (acks, fsync, replication, timeout); the partition decides the rest.
 */
import type { ProduceRequest, ProduceResponse, ProducePartitionResult, ProduceTopicResult } from '../../protocol/apis/produce.ts';
import { ErrorCode, errorInfo, SluiceError } from '../../protocol/errors.ts';
import { BATCH_HEADER_BYTES, isTransactionalAt, producerEpochAt, producerIdAt } from '../../protocol/record-batch.ts';
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

/**
 * For each partition entry (in request order) whose first batch is transactional and has an
 * AddPartitionsToTxn of its producer for that partition being handled by this broker's
 * coordinator: that request's answer for the partition (0: added). null when there is none
 * (the usual case: no await, nothing changes). Reads batch headers only.
 */
function addsInFlight(ctx: BrokerContext, req: ProduceRequest, data: Buffer): Array<Promise<number> | null> | null {
  if (!ctx.txn?.hasAddsInFlight) return null;
  let found: Array<Promise<number> | null> | null = null;
  let pos = 0;
  let i = 0;
  for (const t of req.topics) {
    for (const p of t.partitions) {
      if (p.recordsBytes >= BATCH_HEADER_BYTES && isTransactionalAt(data, pos)) {
        const add = ctx.txn.addInFlight(producerIdAt(data, pos), producerEpochAt(data, pos), t.topic, p.partition);
        if (add !== null) {
          found ??= new Array<Promise<number> | null>(req.topics.reduce((n, x) => n + x.partitions.length, 0)).fill(null);
          found[i] = add;
        }
      }
      pos += p.recordsBytes;
      i++;
    }
  }
  return found;
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
  // A producer may send a transaction's first batches of a partition right behind the
  // AddPartitionsToTxn that adds it, on the same connection (SPEC §6.6): they wait for its
  // answer here, and are then checked against the coordinator's state as any other batch. If
  // it did not add the partition they are refused, never taken on trust.
  const pipelined = addsInFlight(ctx, req, data);
  const addCodes = pipelined === null ? null : await Promise.all(pipelined.map((a) => a ?? 0));
  const acksValid = req.acks === 0 || req.acks === 1 || req.acks === -1;
  const traffic = ctx.traffic;
  const waits: Promise<void>[] = [];
  const topics: ProduceTopicResult[] = [];
  let failed = false;
  let pos = 0;
  let entry = 0;
  for (const t of req.topics) {
    const partitions: ProducePartitionResult[] = [];
    for (const p of t.partitions) {
      const addCode = addCodes?.[entry++] ?? 0;
      const records = data.subarray(pos, pos + p.recordsBytes);
      pos += p.recordsBytes;
      const result: ProducePartitionResult = { partition: p.partition, errorCode: 0, baseOffset: -1, logStartOffset: -1, errorMessage: null };
      partitions.push(result);
      if (!acksValid) {
        result.errorCode = ErrorCode.INVALID_REQUIRED_ACKS;
      } else if (ctx.shuttingDown) {
        result.errorCode = ErrorCode.BROKER_SHUTTING_DOWN;
      } else if (addCode !== 0) {
        // The AddPartitionsToTxn it was sent behind failed: retriably (the producer retries
        // that request, then the batch) or for good (the transaction can only abort).
        result.errorCode = errorInfo(addCode).retriable ? ErrorCode.CONCURRENT_TRANSACTIONS : ErrorCode.INVALID_TXN_STATE;
        result.errorMessage = `the AddPartitionsToTxn this batch was sent behind did not add ${t.topic}/${p.partition} (error ${addCode})`;
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
          result.logStartOffset = partition.consumerLogStartOffset;
          // Metrics: the producer's batches, headers only (a retry of a stored batch wrote nothing).
          if (traffic !== undefined && !appended.duplicate) traffic.produced(t.topic, records);
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
