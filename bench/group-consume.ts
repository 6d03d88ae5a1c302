/**
 * bench consume --group G --consumers K: K GroupConsumers of group G in this process, each
 * with its own connections, read the N messages from the start of the topic. G is made fresh
 * first (its committed offsets deleted) and the members reset to 'earliest', so every run
 * reads the same data. Timed from the first poll (which joins the group) until the union of
 * what the members received holds N messages.
 *
 * The union is counted per partition as (highest offset received + 1 - log start): a member
 * reads a partition contiguously from where the previous owner committed (or from the log
 * start), so what the members received of a partition has no gaps. A message delivered twice
 * (a partition that moved while the group formed, re-read from its last commit) counts once
 * in the union and shows up in `duplicates`.
 *
 * Also reported: joinMs, from the first poll until the group has formed (every member owns
 * its fair share, floor or ceil of partitions/members), and afterJoinMsgsPerSec, the rate of
 * the union from then on, i.e. the group's throughput without its formation.
 */
import { GroupConsumer } from '../client/group/consumer.ts';
import type { BenchOptions } from './options.ts';
import { Progress, result, round, type BenchResult } from './report.ts';
import { freshGroup, logStartOffsets } from './topic.ts';

/** Fail when the members receive nothing new for this long (a stuck join, a dead broker). */
const STALL_MS = 60_000;

export async function benchGroupConsume(opts: BenchOptions, groupId: string, partitions: number[]): Promise<BenchResult> {
  await freshGroup(opts, groupId);
  const next = await logStartOffsets(opts, partitions);
  const k = opts.consumers;
  const counts = new Array<number>(k).fill(0);
  const owned = new Array<number>(k).fill(0);
  let distinct = 0;
  let startedAt = 0;
  let joinMs = -1;
  let distinctAtJoin = 0;
  let finishedAt = 0;
  let failure: Error | null = null;
  const members = Array.from(
    { length: k },
    (_, i) =>
      new GroupConsumer({
        bootstrap: opts.bootstrap,
        clientId: `sluice-bench-group-${i}`,
        groupId,
        topics: [opts.topic],
        autoOffsetReset: 'earliest',
        isolation: opts.isolation,
        sessionTimeoutMs: opts.sessionTimeoutMs,
        onAssignmentChange: (e) => {
          owned[i] = e.owned.length;
          if (joinMs < 0 && formed(owned, partitions.length)) {
            joinMs = performance.now() - startedAt;
            distinctAtJoin = distinct;
          }
        },
      }),
  );
  const progress = new Progress('consume', opts.messages, () => distinct, () => `members ${counts.map((c) => c.toLocaleString('en-US')).join('/')}`);
  let stopping = false;
  let closing: Promise<unknown> | null = null;
  /** Ends every loop: close() makes a pending poll() return []. */
  const stopAll = (): Promise<unknown> => {
    stopping = true;
    closing ??= Promise.all(members.map((m) => m.close().catch(() => {})));
    return closing;
  };
  let lastProgressAt = performance.now();
  let lastDistinct = 0;
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (distinct !== lastDistinct) {
      lastDistinct = distinct;
      lastProgressAt = now;
    } else if (now - lastProgressAt > STALL_MS && !stopping) {
      failure ??= new Error(`group ${groupId}: no new messages for ${STALL_MS / 1000} s (${distinct} of ${opts.messages} received; partitions owned per member: ${owned.join('/')})`);
      void stopAll();
    }
  }, 1000);
  watchdog.unref();
  try {
    startedAt = performance.now();
    const loops = members.map(async (c, i) => {
      try {
        while (!stopping) {
          const msgs = await c.poll();
          if (stopping) return;
          counts[i]! += msgs.length;
          for (let j = 0; j < msgs.length; j++) {
            const m = msgs[j]!;
            const o = m.offset + 1;
            const n = next[m.partition]!;
            if (o > n) {
              distinct += o - n;
              next[m.partition] = o;
            }
          }
          if (distinct >= opts.messages) {
            finishedAt = performance.now();
            void stopAll();
          }
        }
      } catch (e) {
        if (stopping) return;
        failure ??= e as Error;
        void stopAll();
      }
    });
    await Promise.all(loops);
    if (failure) throw failure;
    const seconds = (finishedAt - startedAt) / 1000;
    return result('consume', opts.messages, opts.sizeBytes, seconds, {
      group: groupId,
      consumers: k,
      memberMessages: counts,
      duplicates: counts.reduce((a, b) => a + b, 0) - distinct,
      joinMs: round(joinMs, 1),
      ...(joinMs >= 0 && finishedAt - startedAt > joinMs
        ? { afterJoinMsgsPerSec: Math.round(((distinct - distinctAtJoin) * 1000) / (finishedAt - startedAt - joinMs)) }
        : {}),
    });
  } finally {
    clearInterval(watchdog);
    progress.stop();
    await stopAll();
  }
}

/** Every member owns its fair share (floor or ceil of partitions/members); together they own all. */
function formed(owned: number[], partitions: number): boolean {
  const lo = Math.floor(partitions / owned.length);
  const hi = Math.ceil(partitions / owned.length);
  return owned.every((n) => n >= lo && n <= hi) && owned.reduce((a, b) => a + b, 0) === partitions;
}
