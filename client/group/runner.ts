/**
 * GroupRunner: the run loop behind GroupConsumer.run(), with retry topics and a dead-letter
 * topic (names and headers: retry-policy.ts).
 *
 * Contract:
 * - eachMessage is called for one message at a time, in offset order per partition. A message
 *   is processed when the handler returned without calling ctx.nack(): it then counts as
 *   consumed (committed by auto-commit; see GroupConsumer for the delivery modes).
 * - A handler that throws, or calls ctx.nack(reason), fails the message. With `retry`
 *   configured the runner republishes it (same key, value and original headers, plus the
 *   sluice-* retry headers) to the next retry topic, or after the last one to the DLQ,
 *   awaits the produce acknowledgement (acks=all), and only then counts the original as
 *   processed. If the republish fails the partition is rewound to the message and run()
 *   rejects: the message is not lost. Without `retry`, a failed message also rewinds its
 *   partition and run() rejects with the handler's error (or SluiceError for a nack).
 * - With delays [d1..dn] a message that always fails is handled n+1 times, then lands in
 *   `<group>.<topic>.dlq`.
 * - A message from a retry topic is not handled before its sluice-due-ms. The runner
 *   republishes to a retry topic as a delayed message (SPEC §8.8: sluice-deliver-at-ms = the
 *   due time), so the broker holds it back until then and the consumer does not wait. The
 *   waiting stays as the fallback (a message already in a retry topic, a broker whose clock is
 *   behind ours, or one that does not hold delayed messages): a message read before its due
 *   time rewinds its partition to it and pauses it until then; other partitions and the main
 *   topics go on.
 * - The runner subscribes the group to the main topics and their retry topics (not the
 *   DLQ), creating missing retry/DLQ topics with the source topic's partition count. The
 *   subscription must be topic names (a pattern cannot say which retry topics to create).
 * - stop() finishes the message in hand, rewinds the rest of the batch, and resolves when
 *   run() returned. The consumer stays open (close() it).
 *
 * GroupConsumer.run() builds the runner with a RunnerMember (below): it records what it
 * consumed, skipped or rewound in the member's DeliverySession (delivery-session.ts), the
 * same one the member's poll() and iterator use, and does not know GroupConsumer itself.
 */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import { Admin } from '../admin.ts';
import type { Cluster } from '../cluster.ts';
import type { Message } from '../consumer.ts';
import type { DeliverySession } from './delivery-session.ts';
import { tpKey, type Subscription, type TopicPartition } from './membership.ts';
import { Producer } from '../producer.ts';
import {
  dueTimeMs,
  failureReason,
  nextDestination,
  parseRetryTopic,
  readRetryInfo,
  retryTopicsFor,
  validateRetryPolicy,
  type RetryInfo,
  type RetryPolicy,
} from './retry-policy.ts';

export interface EachMessageContext {
  /** Fails the message (as throwing does) with a reason recorded in sluice-failure-reason. */
  nack(reason?: string): void;
  /** Failed attempts before this one: 0 on the main topic, n on retry topic n. */
  attempt: number;
  /** The retry headers, or null on the main topic. */
  retry: RetryInfo | null;
}

export interface RunOptions {
  eachMessage: (message: Message, ctx: EachMessageContext) => Promise<void> | void;
  /** Retry topics with these delays, then the DLQ. Without it a failure stops run(). */
  retry?: RetryPolicy;
  /** Longest wait of one poll inside the loop. Default the consumer's maxWaitMs. */
  pollTimeoutMs?: number;
}

/**
 * What the runner needs of its group member: the delivery session it records progress in,
 * the member's poll (nothing marked consumed implicitly), its subscription, and its Cluster,
 * whose metadata the retry producer and the admin share (each on a lane of its own).
 */
export interface RunnerMember {
  session: DeliverySession;
  poll(timeoutMs?: number): Promise<Message[]>;
  groupId: string;
  bootstrap: string | string[];
  clientId: string;
  cluster: Cluster;
  subscriptionOf(): Subscription | null;
  subscribe(topics: string[]): void;
}

/** The handler nack'ed the message (run() without retry rejects with this). */
export class MessageNackedError extends Error {
  constructor(readonly reason: string) {
    super(`message nacked: ${reason}`);
    this.name = 'MessageNackedError';
  }
}

export class GroupRunner {
  private stopped = false;
  private done: Promise<void> | null = null;
  private producer: Producer | null = null;
  /** Partitions paused until their head message is due, with the resume timer. */
  private readonly pausedUntil = new Map<string, { tp: TopicPartition; timer: NodeJS.Timeout }>();

  private readonly session: DeliverySession;

  constructor(private readonly member: RunnerMember, private readonly opts: RunOptions) {
    this.session = member.session;
    if (typeof opts.eachMessage !== 'function') throw new TypeError('run() needs an eachMessage handler');
    if (opts.retry) validateRetryPolicy(opts.retry);
  }

  run(): Promise<void> {
    this.done ??= this.loop();
    return this.done;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done?.catch(() => {});
  }

  /** Partitions left the member: their resume timers are moot. */
  forget(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const k = tpKey(tp.topic, tp.partition);
      const p = this.pausedUntil.get(k);
      if (p) clearTimeout(p.timer);
      this.pausedUntil.delete(k);
    }
  }

  private async loop(): Promise<void> {
    try {
      if (this.opts.retry) await this.prepareRetryTopics(this.opts.retry);
      while (!this.stopped) {
        const batch = await this.member.poll(this.opts.pollTimeoutMs);
        await this.processBatch(batch);
      }
    } finally {
      for (const p of this.pausedUntil.values()) {
        clearTimeout(p.timer);
        try {
          this.session.resume(p.tp.topic, p.tp.partition);
        } catch {
          // closed
        }
      }
      this.pausedUntil.clear();
      const producer = this.producer;
      this.producer = null;
      await producer?.close().catch(() => {});
    }
  }

  private async processBatch(batch: Message[]): Promise<void> {
    const skip = new Set<string>();
    let i = 0;
    try {
      for (; i < batch.length; i++) {
        const m = batch[i]!;
        const key = tpKey(m.topic, m.partition);
        if (skip.has(key)) continue;
        if (this.stopped) break;
        if (!this.session.isActive(m.topic, m.partition)) {
          this.session.settleRevoking(m.topic, m.partition);
          skip.add(key);
          continue;
        }
        if (this.opts.retry && parseRetryTopic(this.member.groupId, m.topic)) {
          const due = dueTimeMs(m.headers);
          const now = Date.now();
          if (due > now) {
            this.holdUntil(m, due - now);
            skip.add(key);
            continue;
          }
        }
        await this.handle(m);
        this.session.markConsumed(m.topic, m.partition, m.offset + 1);
      }
    } finally {
      // Whatever was not processed (stop, failure) is delivered again.
      if (i < batch.length) this.session.rewind(batch.slice(i).filter((m) => !skip.has(tpKey(m.topic, m.partition))));
      // A batch handled to its end: what the engine passed without handing out (transaction
      // markers, aborted or tag-filtered messages: skippedInLastPoll) counts as consumed too,
      // so commits move past it even when a poll returns nothing. Held partitions were
      // rewound to the held message (seek), so their consumed offset stops there.
      if (i === batch.length) this.session.markHeldConsumed();
      else this.session.batchDone();
    }
  }

  /** Rewinds the partition to m and pauses it until m is due. */
  private holdUntil(m: Message, delayMs: number): void {
    const key = tpKey(m.topic, m.partition);
    this.session.seek(m.topic, m.partition, m.offset);
    this.session.pause(m.topic, m.partition);
    const prev = this.pausedUntil.get(key);
    if (prev) clearTimeout(prev.timer);
    const tp = { topic: m.topic, partition: m.partition };
    const timer = setTimeout(() => {
      if (this.pausedUntil.get(key)?.timer !== timer) return;
      this.pausedUntil.delete(key);
      try {
        this.session.resume(tp.topic, tp.partition);
      } catch {
        // closed meanwhile
      }
    }, delayMs);
    this.pausedUntil.set(key, { tp, timer });
  }

  /** Runs the handler; on failure republishes (or rethrows without a retry policy). */
  private async handle(m: Message): Promise<void> {
    let nacked: string | null = null;
    let thrown: unknown = undefined;
    const info = this.opts.retry ? readRetryInfo(m.headers) : null;
    const ctx: EachMessageContext = {
      nack: (reason?: string) => { nacked = reason ?? 'nacked by the handler'; },
      attempt: info?.attempt ?? 0,
      retry: info,
    };
    try {
      await this.opts.eachMessage(m, ctx);
    } catch (e) {
      thrown = e;
      nacked = failureReason(e);
    }
    if (nacked === null) return;
    if (!this.opts.retry) throw thrown ?? new MessageNackedError(nacked);
    const dest = nextDestination(this.member.groupId, this.opts.retry, m, nacked, Date.now());
    this.producer ??= new Producer({ bootstrap: this.member.bootstrap, clientId: `${this.member.clientId}-retry`, acks: 'all', profile: 'latency' }, this.member.cluster);
    await this.producer.send({
      topic: dest.topic,
      partition: dest.partition,
      key: m.key,
      value: m.value,
      headers: dest.headers.map((h) => ({ key: h.key, value: h.value })),
      // A retry delay of 0 is due now: no delivery time, the message is appended at once.
      deliverAt: dest.dueMs !== null && dest.dueMs > Date.now() ? dest.dueMs : undefined,
    });
  }

  /** Creates missing retry/DLQ topics and subscribes the group to the main and retry topics. */
  private async prepareRetryTopics(policy: RetryPolicy): Promise<void> {
    const sub = this.member.subscriptionOf();
    if (!sub || !('topics' in sub)) throw new TypeError('run() with retry needs a subscription by topic names, not a pattern');
    const main = sub.topics.filter((t) => !parseRetryTopic(this.member.groupId, t));
    const admin = new Admin({ bootstrap: this.member.bootstrap, clientId: `${this.member.clientId}-admin` }, this.member.cluster);
    const wanted: string[] = [...main];
    try {
      const md = await admin.metadata(main);
      for (const topic of main) {
        const t = md.topics.find((x) => x.topic === topic);
        if (!t || t.errorCode !== ErrorCode.NONE) throw new SluiceError((t?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) as ErrorCode, `topic ${topic} (needed to size its retry topics)`);
        const { retry, dlq } = retryTopicsFor(this.member.groupId, topic, policy);
        for (const name of [...retry, dlq]) {
          try {
            await admin.createTopics([{ topic: name, partitions: t.partitions.length }]);
          } catch (e) {
            if (!(e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw e;
          }
        }
        wanted.push(...retry);
      }
    } finally {
      await admin.close();
    }
    this.member.subscribe(wanted);
  }
}
