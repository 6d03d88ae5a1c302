/**
 * The bench's sending loop: hands records to a Producer in chunks of CHUNK via sendBatch
 * (one promise per chunk, not per record), optionally paced to a rate, and counts
 * acknowledgements. The Producer's bufferMemory provides the back-pressure; this loop only
 * bounds how many chunks it has not yet seen settle (CHUNKS_IN_FLIGHT_MAX).
 */
import type { Producer, ProducerMessage } from '../client/producer.ts';

const CHUNK = 1000;
const CHUNKS_IN_FLIGHT_MAX = 64;
/** When paced, how often the loop wakes to send what is due. */
const PACE_TICK_MS = 1;

export interface SendStats {
  sent: number;
  acked: number;
}

export async function sendMessages(
  producer: Producer,
  topic: string,
  count: number,
  value: () => Buffer,
  rateMsgsPerSec: number,
  stats: SendStats,
  /** Sets more fields of each message, in send order (bench delayed: partition, deliverAt). */
  shape?: (m: ProducerMessage) => void,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let failure: Error | null = null;
  const startedAt = performance.now();
  let sent = 0;
  while (sent < count) {
    if (failure) throw failure;
    let n = Math.min(CHUNK, count - sent);
    if (rateMsgsPerSec !== Infinity) {
      const due = Math.floor(((performance.now() - startedAt) * rateMsgsPerSec) / 1000) - sent;
      if (due <= 0) {
        await sleep(PACE_TICK_MS);
        continue;
      }
      n = Math.min(n, due);
    }
    const msgs: ProducerMessage[] = new Array(n);
    for (let i = 0; i < n; i++) msgs[i] = { topic, value: value() };
    if (shape !== undefined) for (let i = 0; i < n; i++) shape(msgs[i]!);
    sent += n;
    stats.sent += n;
    const p = producer.sendBatch(msgs).then(
      () => {
        stats.acked += n;
      },
      (e: Error) => {
        failure ??= e;
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= CHUNKS_IN_FLIGHT_MAX) await Promise.race(inFlight);
    else if (rateMsgsPerSec === Infinity && (sent / CHUNK) % 16 === 0) await yieldToLoop();
  }
  await producer.flush();
  await Promise.all(inFlight);
  if (failure) throw failure;
}

/**
 * Sends `count` records in transactions of `txnMessages` (the last may be smaller), one
 * transaction at a time: sendBatch chunks of at most CHUNK, then commit (which waits for
 * every acknowledgement). Unpaced: transactions are timed at full speed.
 */
export async function sendTransactions(
  producer: Producer,
  topic: string,
  count: number,
  value: () => Buffer,
  txnMessages: number,
  stats: SendStats,
): Promise<void> {
  let sent = 0;
  while (sent < count) {
    const inTxn = Math.min(txnMessages, count - sent);
    const chunks: Array<Promise<unknown>> = [];
    // The commit seals the open batches and waits for every acknowledgement. Awaiting the
    // sends inside the transaction instead would hold its last, partly filled batch for
    // lingerMs first (about 4 ms of the 7 ms a 1000-message transaction took).
    await producer.transaction(async (tx) => {
      for (let done = 0; done < inTxn; ) {
        const n = Math.min(CHUNK, inTxn - done);
        const msgs: ProducerMessage[] = new Array(n);
        for (let i = 0; i < n; i++) msgs[i] = { topic, value: value() };
        done += n;
        stats.sent += n;
        chunks.push(tx.sendBatch(msgs));
      }
    });
    // Settled by the commit; a failed send failed the commit already.
    await Promise.all(chunks);
    sent += inTxn;
    stats.acked += inTxn;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Lets I/O callbacks (responses, the consumer in e2e) run between bursts. */
function yieldToLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
