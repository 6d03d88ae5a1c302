/**
 * Producer-id and transaction APIs: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
 * EndTxn (SPEC §6.19-6.22). Without a transactionalId any broker answers InitProducerId from
 * its block of producer ids (server/txn/producer-id-manager.ts); everything else goes to the
 * transaction coordinator (server/txn/transaction-coordinator.ts).
 */
import type { AddOffsetsToTxnRequest } from '../../protocol/apis/add-offsets-to-txn.ts';
import type { AddPartitionsToTxnRequest } from '../../protocol/apis/add-partitions-to-txn.ts';
import type { EndTxnRequest } from '../../protocol/apis/end-txn.ts';
import type { InitProducerIdRequest, InitProducerIdResponse } from '../../protocol/apis/init-producer-id.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { HandlerResult } from '../network/reply.ts';
import type { BrokerContext } from './context.ts';
import { checkEntries, partitionEntries } from './request-limits.ts';

/** Partition entries in one AddPartitionsToTxn (SPEC §6, Entry limits). */
export const ADD_PARTITIONS_TO_TXN_PARTITIONS_MAX = 10_000;

/** The largest producerEpoch (int16, as in the RecordBatch header, SPEC §8.2). */
export const PRODUCER_EPOCH_MAX = 32767;

function initProducerIdError(code: ErrorCode, message: string): HandlerResult {
  return { control: { errorCode: code, errorMessage: message, producerId: -1, producerEpoch: -1 } satisfies InitProducerIdResponse };
}

/** The given producerId/producerEpoch pair: both -1, or a producer id ≥ 0 with an epoch 0 … 32767. */
export function checkProducerPair(producerId: number, producerEpoch: number): string | null {
  if (producerId === -1 && producerEpoch === -1) return null;
  if (producerId >= 0 && Number.isSafeInteger(producerId) && producerEpoch >= 0 && producerEpoch <= PRODUCER_EPOCH_MAX) return null;
  return `producerId ${producerId} with producerEpoch ${producerEpoch}: give both as -1, or a producerId ≥ 0 with a producerEpoch 0…${PRODUCER_EPOCH_MAX}`;
}

export async function handleInitProducerId(ctx: BrokerContext, req: InitProducerIdRequest): Promise<HandlerResult> {
  const bad = checkProducerPair(req.producerId, req.producerEpoch);
  if (bad) return initProducerIdError(ErrorCode.INVALID_PRODUCER_ID_MAPPING, bad);
  if (req.transactionalId !== null) return { control: await ctx.txn.initProducerId({ ...req, transactionalId: req.transactionalId }) };
  try {
    // A producer bumping its own epoch (after UNKNOWN_PRODUCER_ID or a sequence it cannot
    // repair) keeps its id; only at the last epoch does it need a new one.
    if (req.producerId >= 0 && req.producerEpoch < PRODUCER_EPOCH_MAX) {
      return { control: { errorCode: 0, errorMessage: null, producerId: req.producerId, producerEpoch: req.producerEpoch + 1 } satisfies InitProducerIdResponse };
    }
    const producerId = await ctx.producerIds.allocate();
    return { control: { errorCode: 0, errorMessage: null, producerId, producerEpoch: 0 } satisfies InitProducerIdResponse };
  } catch (e) {
    if (e instanceof SluiceError) return initProducerIdError(e.code, e.message);
    throw e;
  }
}

export async function handleAddPartitionsToTxn(ctx: BrokerContext, req: AddPartitionsToTxnRequest): Promise<HandlerResult> {
  checkEntries('AddPartitionsToTxn', 'partitions', partitionEntries(req.topics), ADD_PARTITIONS_TO_TXN_PARTITIONS_MAX);
  return { control: await ctx.txn.addPartitions(req) };
}

export async function handleAddOffsetsToTxn(ctx: BrokerContext, req: AddOffsetsToTxnRequest): Promise<HandlerResult> {
  return { control: await ctx.txn.addOffsets(req) };
}

export async function handleEndTxn(ctx: BrokerContext, req: EndTxnRequest): Promise<HandlerResult> {
  return { control: await ctx.txn.endTxn(req) };
}
