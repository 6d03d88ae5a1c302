/**
 * A scripted single-node broker for producer unit tests (idempotence, transactions): it
 * speaks the real wire format (frames, headers, MessagePack control, data sections) and
 * keeps, per partition, a log of the batches it appended and the SPEC §8.5 producer state
 * (epoch, last sequence, the last 5 batches' sequence ranges and offsets): duplicates are
 * answered with their original offset, gaps with OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch
 * with INVALID_PRODUCER_EPOCH. Tests script faults through `beforeProduce` and the
 * transaction hooks, and read `events` (the order requests arrived in) and `log`.
 */
import net from 'node:net';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { ProduceRequest } from '../../protocol/apis/index.ts';
import { decodeBody, encodeControl } from '../../protocol/body.ts';
import { ErrorCode, errorInfo } from '../../protocol/errors.ts';
import { FrameDecoder } from '../../protocol/frame.ts';
import { decodeRequestHeader } from '../../protocol/header.ts';
import { batchSizeAt, baseSequenceAt, decodeRecords, isTransactionalAt, producerEpochAt, producerIdAt, validateBatch, newBatchInfo } from '../../protocol/record-batch.ts';

export interface StoredBatch {
  partition: number;
  baseOffset: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  transactional: boolean;
  values: string[];
}

/** What a Produce of one batch is answered with instead of the normal handling. */
export type ProduceVerdict = { errorCode: number } | 'append-and-drop-connection' | 'drop-connection' | null;

interface ProducerState {
  epoch: number;
  lastSeq: number;
  recent: Array<{ first: number; last: number; offset: number }>;
}

export class ScriptedProducerBroker {
  readonly partitions: number;
  readonly log: StoredBatch[][] = [];
  private readonly state: Array<Map<number, ProducerState>> = [];
  /** Request names in arrival order, e.g. 'Produce p0 seq 0', 'AddPartitionsToTxn p0,p1', 'EndTxn commit'. */
  readonly events: string[] = [];
  readonly initRequests: Array<{ transactionalId: string | null; producerId: number; producerEpoch: number }> = [];
  /** The id and epoch InitProducerId last gave. */
  producerId = -1;
  epoch = -1;
  private nextProducerId = 7;
  private readonly txnIds = new Map<string, number>();
  /** Answer InitProducerId with UNKNOWN_API in the response header (a broker without it). */
  initUnsupported = false;
  /** Per batch, before normal handling: a verdict overrides it. */
  beforeProduce: (b: StoredBatch, nth: number) => ProduceVerdict = () => null;
  /** Holds each Produce response this long (so several requests are in flight). */
  produceDelayMs = 0;
  /** Error codes returned (one per call, then NONE) by transaction APIs, by API name. */
  readonly txnErrors = new Map<string, number[]>();
  lastTxnOffsetCommit: unknown = null;
  /** Holds AddPartitionsToTxn answers this long; the partitions join the transaction when answered. */
  addPartitionsDelayMs = 0;
  /** Partitions in the open transaction; a transactional batch for another is refused with INVALID_TXN_STATE. */
  private readonly txnPartitions = new Set<number>();
  /** AddPartitionsToTxn being answered, by partition: a transactional batch behind one waits for its code (SPEC §6.6). */
  private readonly addsInFlight = new Map<number, Promise<number>>();
  private produced = 0;
  private server!: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(partitions = 1, readonly topic = 't') {
    this.partitions = partitions;
    for (let p = 0; p < partitions; p++) {
      this.log.push([]);
      this.state.push(new Map());
    }
  }

  async start(): Promise<void> {
    this.server = net.createServer((s) => this.serve(s));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Every record value of a partition, in log order. */
  values(partition: number): string[] {
    return this.log[partition]!.flatMap((b) => b.values);
  }

  /** Forgets every producer's state on a partition (as after expiry or deleted records). */
  forgetProducers(partition: number): void {
    this.state[partition]!.clear();
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const decoder = new FrameDecoder(1 << 30);
    let chain: Promise<void> = Promise.resolve();
    socket.on('error', () => {});
    socket.on('data', (chunk) =>
      decoder.push(chunk, (frame) => {
        const h = decodeRequestHeader(frame);
        const body = decodeBody(frame, h.bodyOffset);
        const answer = this.handle(h.apiKey, body.control, body.data);
        chain = chain.then(() => answer).then((a) => {
          if (a === 'drop') {
            socket.destroy();
            return;
          }
          const [control, headerError] = a;
          const c = encodeControl(control);
          const head = Buffer.alloc(4 + 6 + 4);
          head.writeUInt32BE(6 + 4 + c.length, 0);
          head.writeInt32BE(h.correlationId, 4);
          head.writeInt16BE(headerError, 8);
          head.writeUInt32BE(c.length, 10);
          if (!socket.destroyed) socket.write(Buffer.concat([head, c]));
        });
      }),
    );
  }

  private txnError(api: string): number {
    const list = this.txnErrors.get(api);
    return list && list.length > 0 ? list.shift()! : ErrorCode.NONE;
  }

  private async handle(apiKey: number, control: any, data: Buffer): Promise<[unknown, number] | 'drop'> {
    switch (apiKey) {
      case ApiKey.METADATA:
        return [{
          clusterId: 'scripted',
          controllerId: 0,
          brokers: [{ nodeId: 0, host: '127.0.0.1', port: this.port }],
          topics: (control.topics ?? [this.topic]).map((topic: string) => topic === this.topic
            ? { topic, errorCode: 0, partitions: Array.from({ length: this.partitions }, (_, p) => ({ partition: p, errorCode: 0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0] })) }
            : { topic, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partitions: [] }),
        }, 0];
      case ApiKey.INIT_PRODUCER_ID: {
        this.events.push(`InitProducerId ${control.producerId}/${control.producerEpoch}`);
        if (this.initUnsupported) return [{}, ErrorCode.UNKNOWN_API];
        this.initRequests.push({ transactionalId: control.transactionalId, producerId: control.producerId, producerEpoch: control.producerEpoch });
        const err = this.txnError('InitProducerId');
        if (err !== ErrorCode.NONE) return [{ errorCode: err, errorMessage: null, producerId: -1, producerEpoch: -1 }, 0];
        if (control.producerId >= 0) {
          // A bump (SPEC §6.19): same id, next epoch.
          this.producerId = control.producerId;
          this.epoch = control.producerEpoch + 1;
        } else if (control.transactionalId !== null && this.txnIds.has(control.transactionalId)) {
          this.producerId = this.txnIds.get(control.transactionalId)!;
          this.epoch++;
        } else {
          this.producerId = this.nextProducerId++;
          this.epoch = 0;
          if (control.transactionalId !== null) this.txnIds.set(control.transactionalId, this.producerId);
        }
        return [{ errorCode: 0, errorMessage: null, producerId: this.producerId, producerEpoch: this.epoch }, 0];
      }
      case ApiKey.FIND_COORDINATOR:
        this.events.push(`FindCoordinator ${control.keyType}`);
        return [{ errorCode: 0, errorMessage: null, nodeId: 0, host: '127.0.0.1', port: this.port }, 0];
      case ApiKey.ADD_PARTITIONS_TO_TXN: {
        const parts = control.topics.flatMap((t: { partitions: number[] }) => t.partitions.map((p) => `p${p}`)).join(',');
        this.events.push(`AddPartitionsToTxn ${parts}`);
        const err = this.txnError('AddPartitionsToTxn');
        let answered!: (code: number) => void;
        const inFlight = new Promise<number>((r) => (answered = r));
        for (const t of control.topics) for (const p of t.partitions) this.addsInFlight.set(p, inFlight);
        if (this.addPartitionsDelayMs > 0) await new Promise((r) => setTimeout(r, this.addPartitionsDelayMs));
        if (err === ErrorCode.NONE) for (const t of control.topics) for (const p of t.partitions) this.txnPartitions.add(p);
        for (const t of control.topics) for (const p of t.partitions) if (this.addsInFlight.get(p) === inFlight) this.addsInFlight.delete(p);
        answered(err);
        return [{ errorCode: err, errorMessage: null, topics: control.topics.map((t: { topic: string; partitions: number[] }) => ({ topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p, errorCode: err })) })) }, 0];
      }
      case ApiKey.ADD_OFFSETS_TO_TXN:
        this.events.push(`AddOffsetsToTxn ${control.groupId}`);
        return [{ errorCode: this.txnError('AddOffsetsToTxn'), errorMessage: null }, 0];
      case ApiKey.TXN_OFFSET_COMMIT: {
        this.events.push(`TxnOffsetCommit ${control.groupId} ${control.memberId}@${control.memberEpoch}`);
        this.lastTxnOffsetCommit = control;
        const err = this.txnError('TxnOffsetCommit');
        return [{ errorCode: err, errorMessage: null, topics: [] }, 0];
      }
      case ApiKey.END_TXN: {
        const err = this.txnError('EndTxn');
        this.events.push(`EndTxn ${control.committed ? 'commit' : 'abort'}${err ? ` -> ${err}` : ''}`);
        if (err === ErrorCode.NONE) this.txnPartitions.clear();
        return [{ errorCode: err, errorMessage: null }, 0];
      }
      case ApiKey.PRODUCE:
        return this.produce(control as ProduceRequest, data);
      default:
        return [{}, ErrorCode.UNKNOWN_API];
    }
  }

  private async produce(req: ProduceRequest, data: Buffer): Promise<[unknown, number] | 'drop'> {
    // Transactional batches sent behind an AddPartitionsToTxn of their partition wait for its
    // answer; if it did not add the partition they are refused (SPEC §6.6).
    const addCodes = new Map<number, number>();
    for (let i = 0, at = 0; i < req.topics.length; i++) {
      for (const p of req.topics[i]!.partitions) {
        const add = this.addsInFlight.get(p.partition);
        if (add && p.recordsBytes > 0 && isTransactionalAt(data, at)) addCodes.set(p.partition, await add);
        at += p.recordsBytes;
      }
    }
    let pos = 0;
    let drop = false;
    const topics = [];
    for (const t of req.topics) {
      const partitions = [];
      for (const p of t.partitions) {
        const end = pos + p.recordsBytes;
        let result = { partition: p.partition, errorCode: 0, baseOffset: -1, logStartOffset: 0, errorMessage: null as string | null };
        let first = true;
        for (let at = pos; at < end; at += batchSizeAt(data, at)) {
          const info = newBatchInfo();
          const code = validateBatch(data, at, end, info);
          if (code !== ErrorCode.NONE) throw new Error(`scripted broker: invalid batch: ${info.problem}`);
          const b: StoredBatch = {
            partition: p.partition,
            baseOffset: -1,
            producerId: producerIdAt(data, at),
            producerEpoch: producerEpochAt(data, at),
            baseSequence: baseSequenceAt(data, at),
            transactional: isTransactionalAt(data, at),
            values: decodeRecords(data, at).map((r) => Buffer.from(r.value!).toString()),
          };
          this.events.push(`Produce p${p.partition} seq ${b.baseSequence} epoch ${b.producerEpoch}`);
          const verdict = this.beforeProduce(b, this.produced++);
          let r: { errorCode: number; baseOffset: number };
          const addCode = addCodes.get(b.partition) ?? ErrorCode.NONE;
          if (addCode !== ErrorCode.NONE) {
            r = { errorCode: errorInfo(addCode).retriable ? ErrorCode.CONCURRENT_TRANSACTIONS : ErrorCode.INVALID_TXN_STATE, baseOffset: -1 };
          } else if (b.transactional && !this.txnPartitions.has(b.partition)) {
            r = { errorCode: ErrorCode.INVALID_TXN_STATE, baseOffset: -1 };
          } else if (verdict === 'drop-connection') {
            drop = true;
            r = { errorCode: 0, baseOffset: -1 };
          } else if (verdict !== null && verdict !== 'append-and-drop-connection') {
            r = { errorCode: verdict.errorCode, baseOffset: -1 };
          } else {
            r = this.append(b);
            if (verdict === 'append-and-drop-connection') drop = true;
          }
          this.events[this.events.length - 1] += r.errorCode ? ` -> ${r.errorCode}` : ` -> @${r.baseOffset}`;
          // A request's batches of one partition are appended together or refused together.
          if (first) result = { ...result, ...r };
          else if (r.errorCode !== 0 && result.errorCode === 0) result = { ...result, ...r };
          first = false;
          if (r.errorCode !== 0) break;
        }
        partitions.push(result);
        pos = end;
      }
      topics.push({ topic: t.topic, partitions });
    }
    if (this.produceDelayMs > 0) await new Promise((r) => setTimeout(r, this.produceDelayMs));
    if (drop) return 'drop';
    return [{ topics }, 0];
  }

  /** SPEC §8.5 on one batch: append, answer a duplicate with its offset, or refuse. */
  private append(b: StoredBatch): { errorCode: number; baseOffset: number } {
    const log = this.log[b.partition]!;
    const next = () => {
      const last = log.at(-1);
      return last ? last.baseOffset + last.values.length : 0;
    };
    if (b.producerId >= 0) {
      const states = this.state[b.partition]!;
      const s = states.get(b.producerId);
      const lastSeqOfBatch = b.baseSequence + b.values.length - 1;
      if (s && b.producerEpoch < s.epoch) return { errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, baseOffset: -1 };
      if (s && b.producerEpoch === s.epoch) {
        const dup = s.recent.find((x) => x.first === b.baseSequence && x.last === lastSeqOfBatch);
        if (dup) return { errorCode: 0, baseOffset: dup.offset };
        if (b.baseSequence !== s.lastSeq + 1) return { errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, baseOffset: -1 };
      } else if (b.baseSequence !== 0) {
        return { errorCode: s ? ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER : ErrorCode.UNKNOWN_PRODUCER_ID, baseOffset: -1 };
      }
      const offset = next();
      const st = s && b.producerEpoch === s.epoch ? s : { epoch: b.producerEpoch, lastSeq: -1, recent: [] };
      st.lastSeq = lastSeqOfBatch;
      st.recent.push({ first: b.baseSequence, last: lastSeqOfBatch, offset });
      if (st.recent.length > 5) st.recent.shift();
      states.set(b.producerId, st);
    }
    b.baseOffset = next();
    log.push(b);
    return { errorCode: 0, baseOffset: b.baseOffset };
  }
}

/** Runs fn with a started scripted broker of `partitions` partitions, closed afterwards. */
export async function withBroker(partitions: number, fn: (b: ScriptedProducerBroker) => Promise<void>): Promise<void> {
  const b = new ScriptedProducerBroker(partitions);
  await b.start();
  try {
    await fn(b);
  } finally {
    await b.close();
  }
}

/** Producer timings for scripted tests: quick retries, bounded waits. */
export const FAST = { retryBackoffMs: 5, retryBackoffMaxMs: 20, deliveryTimeoutMs: 10_000, requestTimeoutMs: 5_000 };
