/**
 * bench e2e: a producer paced at --rate and a consumer in the same process. Each value starts
 * with its send time (performance.now(), float64), so latency = receive time - send time on one
 * clock, recorded in microseconds in an HDR histogram. Values under 8 bytes cannot hold it;
 * the record timestamp (Date.now() at send, ms resolution) is used instead.
 * Throughput is N over the time from the first send to the last message received.
 */
import hdr from 'hdr-histogram-js';
import { Consumer } from '../client/consumer.ts';
import { Producer } from '../client/producer.ts';
import type { BenchOptions } from './options.ts';
import { Payloads, SEND_TIME_BYTES, sendTimeOf } from './payload.ts';
import { Progress, result, round, type BenchResult } from './report.ts';
import { sendMessages, type SendStats } from './send.ts';

/** Latencies above this (1 hour, in µs) are clamped: the histogram needs a bound. */
const LATENCY_US_MAX = 3_600_000_000;

export async function benchE2e(opts: BenchOptions, partitions: number[]): Promise<BenchResult> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: 3 });
  const producer = new Producer({ bootstrap: opts.bootstrap, acks: opts.acks, profile: opts.profile, clientId: 'sluice-bench-e2e' });
  const consumer = new Consumer({ bootstrap: opts.bootstrap, clientId: 'sluice-bench-e2e', autoOffsetReset: 'earliest', maxWaitMs: 100 });
  const stats: SendStats = { sent: 0, acked: 0 };
  let received = 0;
  const progress = new Progress('e2e', opts.messages, () => received, () => `sent ${stats.sent.toLocaleString('en-US')}`);
  const timed = opts.sizeBytes >= SEND_TIME_BYTES;
  const payloads = new Payloads(opts.sizeBytes);
  try {
    // Start at the current end so only this run's messages are measured.
    await consumer.assign(partitions.map((partition) => ({ topic: opts.topic, partition, offset: 'latest' as const })));
    await producer.cluster.topic(opts.topic);
    const startedAt = performance.now();
    let sendError: Error | null = null;
    const sending = sendMessages(producer, opts.topic, opts.messages, timed ? () => payloads.timedValue() : () => payloads.value(), opts.rateMsgsPerSec, stats).catch((e: Error) => {
      sendError = e;
    });
    while (received < opts.messages) {
      if (sendError) throw sendError;
      const batch = await consumer.poll();
      const nowPerf = performance.now();
      const nowWall = Date.now();
      for (let i = 0; i < batch.length; i++) {
        const m = batch[i]!;
        const latencyMs = timed ? nowPerf - sendTimeOf(m.value!) : nowWall - m.timestamp;
        histogram.recordValue(Math.min(LATENCY_US_MAX, Math.max(1, Math.round(latencyMs * 1000))));
      }
      received += batch.length;
    }
    const seconds = (performance.now() - startedAt) / 1000;
    await sending;
    if (sendError) throw sendError;
    const ms = (us: number): number => round(us / 1000, 3);
    return result('e2e', opts.messages, opts.sizeBytes, seconds, {
      p50Ms: ms(histogram.getValueAtPercentile(50)),
      p99Ms: ms(histogram.getValueAtPercentile(99)),
      p999Ms: ms(histogram.getValueAtPercentile(99.9)),
      maxMs: ms(histogram.maxValue),
    });
  } finally {
    progress.stop();
    await Promise.all([producer.close(), consumer.close()]);
  }
}
