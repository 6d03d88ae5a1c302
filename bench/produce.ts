/**
 * bench produce: K producers share N messages; time from the first send to the last
 * acknowledgement. --idempotent / --no-idempotent choose the producer kind; --transactional
 * sends each producer's share in transactions of --txn-messages (commit included in the time).
 */
import { Producer } from '../client/producer.ts';
import type { BenchOptions } from './options.ts';
import { Payloads } from './payload.ts';
import { Progress, result, type BenchResult } from './report.ts';
import { sendMessages, sendTransactions, type SendStats } from './send.ts';

export async function benchProduce(opts: BenchOptions, quiet = false): Promise<BenchResult> {
  const k = opts.producers;
  const producers = Array.from({ length: k }, (_, i) => new Producer({
    bootstrap: opts.bootstrap,
    acks: opts.acks,
    profile: opts.profile,
    clientId: `sluice-bench-${i}`,
    ...(opts.idempotent !== undefined ? { idempotent: opts.idempotent } : {}),
    // One transactional id per producer and run: instances of different runs do not fence each other.
    ...(opts.transactional ? { transactionalId: `sluice-bench-${process.pid}-${Date.now()}-${i}` } : {}),
  }));
  const stats: SendStats = { sent: 0, acked: 0 };
  const progress = quiet ? null : new Progress('produce', opts.messages, () => stats.acked);
  try {
    // Connect and load metadata before the clock starts.
    await Promise.all(producers.map((p) => p.cluster.topic(opts.topic)));
    if (opts.transactional) await Promise.all(producers.map((p) => p.initTransactions()));
    const startedAt = performance.now();
    await Promise.all(
      producers.map((p, i) => {
        const share = Math.floor(opts.messages / k) + (i < opts.messages % k ? 1 : 0);
        const payloads = new Payloads(opts.sizeBytes);
        if (opts.transactional) return sendTransactions(p, opts.topic, share, () => payloads.value(), opts.txnMessages, stats);
        return sendMessages(p, opts.topic, share, () => payloads.value(), opts.rateMsgsPerSec / k, stats);
      }),
    );
    const seconds = (performance.now() - startedAt) / 1000;
    return result('produce', opts.messages, opts.sizeBytes, seconds);
  } finally {
    progress?.stop();
    await Promise.all(producers.map((p) => p.close()));
  }
}
