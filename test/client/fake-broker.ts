/**
 * A scripted in-process broker for consumer unit tests (no real broker needed). It speaks the
 * real wire format (frames, headers, MessagePack control, data sections) and serves one
 * partition per topic from an in-memory list of batches.
 *
 * Transactions, as SPEC §6.7 / §7.7 describe the broker side: a transactional batch opens its
 * producer's transaction on the partition, a control batch ends it (an abort marker adds an
 * entry to the aborted-transaction list). read_committed fetches get only batches wholly below
 * the last stable offset and the aborted transactions overlapping the returned range;
 * ListOffsets latest under read_committed is the last stable offset.
 */
import net from 'node:net';
import { ApiKey } from '../../protocol/api-keys.ts';
import type { FetchRequest, ListOffsetsRequest, MetadataRequest } from '../../protocol/apis/index.ts';
import { READ_COMMITTED, type AbortedTransaction } from '../../protocol/apis/fetch.ts';
import { encodeControl, decodeBody } from '../../protocol/body.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { FrameDecoder } from '../../protocol/frame.ts';
import { decodeRequestHeader } from '../../protocol/header.ts';
import { Off, buildBatch, isControlAt, isTransactionalAt, lastOffsetAt, producerIdAt, readControlMarker, writeInt64 } from '../../protocol/record-batch.ts';

export interface FakeTopic {
  /** Batches with their base offsets already assigned. */
  batches: Buffer[];
  logStart: number;
  /** Open transactions: producerId -> first offset. */
  open?: Map<number, number>;
  /** Aborted transactions, by marker offset. */
  aborted?: Array<{ producerId: number; firstOffset: number; lastOffset: number }>;
}

export class FakeBroker {
  readonly topics = new Map<string, FakeTopic>();
  readonly fetches: FetchRequest[] = [];
  readonly listOffsets: ListOffsetsRequest[] = [];
  /** This node's id; metadata names it the leader of its own topics. */
  nodeId = 0;
  /** Other fakes of the same cluster: metadata lists them and their topics (each leads its own). */
  peers: FakeBroker[] = [];
  /** Holds every ListOffsets answer this long: a slow (e.g. paused) leader. */
  listOffsetsDelayMs = 0;
  /** The next this-many Metadata answers name no leader (-1): an election under way. */
  leaderlessMetadataAnswers = 0;
  metadataRequests = 0;
  /** Replaces the computed abortedTransactions of read_committed fetches (a test of the client's handling). */
  abortedOverride: AbortedTransaction[] | null = null;
  /** Holds Fetch responses of empty partitions until data arrives or maxWaitMs passes. */
  private parked: Array<() => void> = [];
  private server!: net.Server;
  port = 0;

  async start(): Promise<void> {
    this.server = net.createServer((s) => this.serve(s));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Appends a batch of `values` to topic/0, assigning offsets. */
  append(topic: string, values: string[]): void {
    this.appendBatch(topic, buildBatch(values.map((v) => ({ key: null, value: Buffer.from(v) }))));
  }

  /** Appends a finished batch (transactional, control, plain) to topic/0, assigning its base offset. Returns it. */
  appendBatch(topic: string, batch: Uint8Array): number {
    const t = this.topic(topic);
    const base = this.endOffset(t);
    const b = Buffer.from(batch);
    writeInt64(b, Off.baseOffset, base);
    t.batches.push(b);
    if (isTransactionalAt(b, 0)) {
      const pid = producerIdAt(b, 0);
      t.open ??= new Map();
      t.aborted ??= [];
      if (isControlAt(b, 0)) {
        const first = t.open.get(pid);
        t.open.delete(pid);
        if (first !== undefined && readControlMarker(b, 0)?.committed === false) t.aborted.push({ producerId: pid, firstOffset: first, lastOffset: base });
      } else if (!t.open.has(pid)) {
        t.open.set(pid, base);
      }
    }
    const p = this.parked;
    this.parked = [];
    for (const f of p) f();
    return base;
  }

  topic(name: string): FakeTopic {
    let t = this.topics.get(name);
    if (!t) this.topics.set(name, (t = { batches: [], logStart: 0 }));
    return t;
  }

  endOffset(t: FakeTopic): number {
    const last = t.batches.at(-1);
    return last ? lastOffsetAt(last, 0) + 1 : t.logStart;
  }

  lastStableOffset(t: FakeTopic): number {
    let lso = this.endOffset(t);
    for (const first of t.open?.values() ?? []) lso = Math.min(lso, first);
    return lso;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private serve(socket: net.Socket): void {
    const decoder = new FrameDecoder(1 << 30);
    // Responses leave in request order, as the real broker's do (the client asserts it).
    let chain: Promise<void> = Promise.resolve();
    socket.on('error', () => {});
    socket.on('data', (chunk) =>
      decoder.push(chunk, (frame) => {
        const h = decodeRequestHeader(frame);
        const body = decodeBody(frame, h.bodyOffset);
        const answer = this.handle(h.apiKey, body.control);
        chain = chain.then(() => answer).then(([control, data]) => {
          const c = encodeControl(control);
          const head = Buffer.alloc(4 + 6 + 4);
          const dataLen = data.reduce((n, d) => n + d.length, 0);
          head.writeUInt32BE(6 + 4 + c.length + dataLen, 0);
          head.writeInt32BE(h.correlationId, 4);
          head.writeInt16BE(0, 8);
          head.writeUInt32BE(c.length, 10);
          if (!socket.destroyed) socket.write(Buffer.concat([head, c, ...data]));
        });
      }),
    );
  }

  private async handle(apiKey: number, control: unknown): Promise<[unknown, Buffer[]]> {
    switch (apiKey) {
      case ApiKey.METADATA: {
        const req = control as MetadataRequest;
        this.metadataRequests++;
        const leaderless = this.leaderlessMetadataAnswers > 0;
        if (leaderless) this.leaderlessMetadataAnswers--;
        const nodes = [this, ...this.peers];
        const names = req.topics ?? nodes.flatMap((b) => [...b.topics.keys()]);
        return [
          {
            clusterId: 'fake',
            controllerId: 0,
            brokers: nodes.map((b) => ({ nodeId: b.nodeId, host: '127.0.0.1', port: b.port })),
            topics: names.map((topic) => {
              const leader = nodes.find((b) => b.topics.has(topic))?.nodeId;
              return leader !== undefined
                ? { topic, errorCode: 0, partitions: [{ partition: 0, errorCode: 0, leader: leaderless ? -1 : leader, leaderEpoch: 0, replicas: [leader], isr: leaderless ? [] : [leader] }] }
                : { topic, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, partitions: [] };
            }),
          },
          [],
        ];
      }
      case ApiKey.LIST_OFFSETS: {
        const req = control as ListOffsetsRequest;
        this.listOffsets.push(req);
        if (this.listOffsetsDelayMs > 0) await new Promise((r) => setTimeout(r, this.listOffsetsDelayMs));
        const committed = req.isolationLevel === READ_COMMITTED;
        return [
          {
            topics: req.topics.map((t) => {
              const ft = this.topics.get(t.topic)!;
              const latest = committed ? this.lastStableOffset(ft) : this.endOffset(ft);
              return { topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: 0, offset: p.timestamp === -2 ? ft.logStart : latest, timestamp: -1 })) };
            }),
          },
          [],
        ];
      }
      case ApiKey.FETCH: {
        const req = control as FetchRequest;
        this.fetches.push(req);
        const committed = req.isolationLevel === READ_COMMITTED;
        const answer = (final: boolean): [unknown, Buffer[]] | null => {
          const data: Buffer[] = [];
          const topics = req.topics.map((t) => {
            const ft = this.topics.get(t.topic)!;
            return {
              topic: t.topic,
              partitions: t.partitions.map((p) => {
                const end = this.endOffset(ft);
                const lso = this.lastStableOffset(ft);
                if (p.fetchOffset < ft.logStart || p.fetchOffset > end) {
                  return { partition: p.partition, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, highWatermark: end, lastStableOffset: lso, abortedTransactions: [], logStartOffset: ft.logStart, recordsBytes: 0 };
                }
                // Whole batches from the one containing fetchOffset, as the real broker does;
                // read_committed: only those wholly below the last stable offset.
                const limit = committed ? lso : end;
                const chosen = ft.batches.filter((b) => lastOffsetAt(b, 0) >= p.fetchOffset && lastOffsetAt(b, 0) < limit);
                const bytes = Buffer.concat(chosen);
                data.push(bytes);
                let abortedTransactions: AbortedTransaction[] = [];
                if (committed && chosen.length > 0) {
                  const lastReturned = lastOffsetAt(chosen.at(-1)!, 0);
                  abortedTransactions =
                    this.abortedOverride ??
                    (ft.aborted ?? []).filter((a) => a.firstOffset <= lastReturned && a.lastOffset >= p.fetchOffset).map((a) => ({ producerId: a.producerId, firstOffset: a.firstOffset }));
                }
                return { partition: p.partition, errorCode: 0, highWatermark: end, lastStableOffset: lso, abortedTransactions, logStartOffset: ft.logStart, recordsBytes: bytes.length };
              }),
            };
          });
          const any = data.some((d) => d.length > 0) || topics.some((t) => t.partitions.some((p) => p.errorCode !== 0));
          return any || final ? [{ topics }, data] : null;
        };
        const now = answer(false);
        if (now) return now;
        // Long poll: wait for an append or maxWaitMs.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, req.maxWaitMs);
          this.parked.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        return answer(true)!;
      }
    }
    throw new Error(`fake broker: api ${apiKey} not scripted`);
  }
}

export async function withFake(fn: (b: FakeBroker) => Promise<void>): Promise<void> {
  const b = new FakeBroker();
  await b.start();
  try {
    await fn(b);
  } finally {
    await b.close();
  }
}
