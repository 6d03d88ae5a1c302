/**
 * One consumer-group member as a child process, for the process-level group tests
 * (test/group/*.test.ts). It joins a group with GroupConsumer and appends to its own output
 * file (synchronously, so a kill -9 loses nothing that was written):
 *
 *   START <ms>                          once, just before the first poll (the join starts)
 *   OWN <epoch> <ms> <partitions>       after every ownership change, with the full owned
 *                                       set afterwards: comma-separated partition numbers of
 *                                       the first topic, `topic:p` for any other topic, `-`
 *                                       for none. Written when it starts and stops owning.
 *   <partition> <offset> <value>        one per processed message of the first topic,
 *                                       written BEFORE the offset can be committed
 *                                       (at-least-once: before the iterator moves on)
 *   TRY <ms> <topic> <partition> <offset> <attempt> <value>
 *                                       --run-retry only: one per handler call, any topic
 *   ERR <ms> <message>                  the consume loop failed (then exit code 1)
 *   CLOSED <ms>                         after a clean close (SIGTERM)
 *
 * Usage: node --import tsx test/group/member-process.ts --bootstrap H:P --group G --topic T
 *          --out FILE [--mode at-least-once|at-most-once] [--session-ms N] [--commit-ms N]
 *          [--delay-ms N] [--max-poll-records N] [--run-retry DELAYS] [--fail-value V]
 * --delay-ms slows processing (ms per message), so a kill lands mid-stream; --max-poll-records
 * bounds a poll's batch (at-most-once commits per batch).
 * --run-retry 1000,2000 uses run() with those retry delays; --fail-value V makes the handler
 * throw for every message whose value is V (it then travels the retry topics to the DLQ).
 * SIGTERM closes the consumer cleanly (commit, leave) and exits 0.
 */
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Message } from '../../client/consumer.ts';
import { GroupConsumer, type DeliveryMode } from '../../client/group/consumer.ts';
import type { TopicPartition } from '../../client/group/membership.ts';

const { values: a } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    group: { type: 'string' },
    topic: { type: 'string' },
    out: { type: 'string' },
    mode: { type: 'string', default: 'at-least-once' },
    'session-ms': { type: 'string', default: '3000' },
    'commit-ms': { type: 'string', default: '500' },
    'delay-ms': { type: 'string', default: '0' },
    'max-poll-records': { type: 'string', default: '5000' },
    'run-retry': { type: 'string' },
    'fail-value': { type: 'string' },
  },
});
if (!a.bootstrap || !a.group || !a.topic || !a.out) throw new Error('--bootstrap, --group, --topic and --out are required');
const out = a.out;
const topic = a.topic;
const delayMs = Number(a['delay-ms']);

function line(s: string): void {
  appendFileSync(out, `${s}\n`);
}

function formatOwned(owned: readonly TopicPartition[]): string {
  if (owned.length === 0) return '-';
  return [...owned]
    .sort((x, y) => (x.topic === y.topic ? x.partition - y.partition : x.topic < y.topic ? -1 : 1))
    .map((tp) => (tp.topic === topic ? String(tp.partition) : `${tp.topic}:${tp.partition}`))
    .join(',');
}

const consumer = new GroupConsumer({
  bootstrap: a.bootstrap,
  groupId: a.group,
  topics: [topic],
  clientId: `member-${process.pid}`,
  deliveryMode: a.mode as DeliveryMode,
  autoOffsetReset: 'earliest',
  sessionTimeoutMs: Number(a['session-ms']),
  autoCommitIntervalMs: Number(a['commit-ms']),
  // Short fetch waits: a revocation is never held up by a long poll.
  maxWaitMs: 200,
  maxPollRecords: Number(a['max-poll-records']),
  // Reconnect quickly after a broker restart (the default caps the backoff at 5 s).
  retryBackoffMs: 100,
  onAssignmentChange: (e) => line(`OWN ${e.memberEpoch} ${Date.now()} ${formatOwned(e.owned)}`),
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void consumer.close().then(
    () => { line(`CLOSED ${Date.now()}`); process.exit(0); },
    (e: Error) => { line(`ERR ${Date.now()} close: ${e.message}`); process.exit(1); },
  );
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const text = (m: Message): string => m.value?.toString('utf8') ?? 'null';

async function iterate(): Promise<void> {
  for await (const m of consumer) {
    if (m.topic === topic) line(`${m.partition} ${m.offset} ${text(m)}`);
    if (delayMs > 0) await sleep(delayMs);
  }
}

async function runWithRetry(delaysMs: number[]): Promise<void> {
  await consumer.run({
    retry: { delaysMs },
    eachMessage: async (m, ctx) => {
      line(`TRY ${Date.now()} ${m.topic} ${m.partition} ${m.offset} ${ctx.attempt} ${text(m)}`);
      if (a['fail-value'] !== undefined && text(m) === a['fail-value']) throw new Error(`refusing ${text(m)} (attempt ${ctx.attempt})`);
      if (m.topic === topic) line(`${m.partition} ${m.offset} ${text(m)}`);
      if (delayMs > 0) await sleep(delayMs);
    },
  });
}

line(`START ${Date.now()}`);
try {
  if (a['run-retry'] !== undefined) await runWithRetry(a['run-retry'].split(',').map(Number));
  else await iterate();
} catch (e) {
  if (!stopping) {
    line(`ERR ${Date.now()} ${(e as Error).stack?.replace(/\n/g, ' | ') ?? String(e)}`);
    process.exit(1);
  }
}
