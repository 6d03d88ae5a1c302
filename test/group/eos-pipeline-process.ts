/**
 * A consume-transform-produce process with exactly-once delivery, as a child process for the
 * transaction fault test (issue 9: killed with kill -9 at random points while a
 * read_committed consumer reads its output, the output must hold each input exactly once).
 *
 * Loop: poll topic --in as a member of --group (delivery 'exactly-once': read_committed, no
 * commits of its own); for the batch, one producer transaction (transactional id
 * --transactional-id) that sends one transformed record per input to --out and commits the
 * consumer's pendingOffsets() with tx.sendOffsets. A crash anywhere aborts the open
 * transaction (the next instance's InitProducerId with the same transactional id fences and
 * aborts it), so neither its records nor its offsets count; the next instance resumes from
 * the offsets of the last committed transaction.
 *
 * Output record: key = the input's key (null stays null), value = `<in value>|<in partition>|<in offset>`,
 * headers as the input's. The checker reads --out read_committed and expects every input
 * (partition, offset) exactly once.
 *
 * Log (--log FILE, appended synchronously so a kill -9 loses nothing written):
 *   START <ms>                          before the first poll
 *   TXN <ms> <records> <p>:<next>,...   after a transaction committed: its size and offsets
 *   LOST <ms> <message>                 the member lost its partitions mid-transaction: aborted, goes on
 *   ERR <ms> <message>                  the loop failed (exit code 1; the test restarts it)
 *   CLOSED <ms>                         after SIGTERM and a clean close (exit code 0)
 *
 * Usage: node --import tsx test/group/eos-pipeline-process.ts --bootstrap H:P --group G
 *          --in IN --out OUT --transactional-id ID --log FILE [--max-poll-records N] [--delay-ms N]
 *          [--session-timeout-ms N] [--member-id M]
 * --member-id: a restarted instance given the same id replaces its killed predecessor in the
 * group at once (without it, the killed one holds its partitions until its session expires).
 * --delay-ms sleeps inside each transaction (after the sends, before sendOffsets and the
 * commit), so kills land in open transactions too.
 */
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Message } from '../../client/consumer.ts';
import { GroupConsumer } from '../../client/group/consumer.ts';
import { Producer, type ProducerMessage } from '../../client/producer.ts';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';

const { values: a } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    group: { type: 'string' },
    in: { type: 'string' },
    out: { type: 'string' },
    'transactional-id': { type: 'string' },
    log: { type: 'string' },
    'max-poll-records': { type: 'string', default: '100' },
    'delay-ms': { type: 'string', default: '0' },
    'session-timeout-ms': { type: 'string', default: '6000' },
    'member-id': { type: 'string' },
  },
});
if (!a.bootstrap || !a.group || !a.in || !a.out || !a['transactional-id'] || !a.log) {
  throw new Error('--bootstrap, --group, --in, --out, --transactional-id and --log are required');
}
const log = a.log;
const inTopic = a.in;
const outTopic = a.out;
const delayMs = Number(a['delay-ms']);

function line(s: string): void {
  appendFileSync(log, `${s}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const consumer = new GroupConsumer({
  bootstrap: a.bootstrap,
  groupId: a.group,
  topics: [inTopic],
  clientId: `eos-pipeline-${process.pid}`,
  delivery: 'exactly-once',
  autoOffsetReset: 'earliest',
  // A killed instance holds its partitions until its session expires: the test keeps it short.
  sessionTimeoutMs: Number(a['session-timeout-ms']),
  maxWaitMs: 200,
  maxPollRecords: Number(a['max-poll-records']),
  retryBackoffMs: 100,
  // A restarted instance rejoins as the same member, replacing the killed one at once
  // (SPEC §6.10) instead of waiting for its session to expire.
  ...(a['member-id'] !== undefined ? { memberId: a['member-id'] } : {}),
});
const producer = new Producer({ bootstrap: a.bootstrap, clientId: `eos-pipeline-${process.pid}`, transactionalId: a['transactional-id'], delivery: 'exactly-once' });

function transform(m: Message): ProducerMessage {
  return { topic: outTopic, key: m.key, value: `${m.value?.toString('utf8') ?? 'null'}|${m.partition}|${m.offset}`, headers: m.headers };
}

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
});

line(`START ${Date.now()}`);
try {
  while (!stopping) {
    const msgs = await consumer.poll(200);
    if (msgs.length === 0) continue;
    let offsets: Array<{ partition: number; offset: number }>;
    try {
      offsets = await producer.transaction(async (tx) => {
        await Promise.all(msgs.map((m) => tx.send(transform(m))));
        if (delayMs > 0) await sleep(delayMs);
        // After everything this batch produced: the offsets after what poll() handed out.
        const pending = consumer.pendingOffsets();
        await tx.sendOffsets(consumer, pending);
        return pending;
      });
    } catch (e) {
      // The member lost its partitions meanwhile: the transaction aborted, and the next
      // poll() starts over from the committed offsets (GroupConsumer.pendingOffsets).
      if (e instanceof SluiceError && e.code === ErrorCode.FENCED_MEMBER_EPOCH) {
        line(`LOST ${Date.now()} ${e.message}`);
        continue;
      }
      throw e;
    }
    line(`TXN ${Date.now()} ${msgs.length} ${offsets.map((o) => `${o.partition}:${o.offset}`).join(',')}`);
  }
  await producer.close();
  await consumer.close();
  line(`CLOSED ${Date.now()}`);
  process.exit(0);
} catch (e) {
  // An aborted transaction leaves the consumer ahead of the committed offsets: start over.
  line(`ERR ${Date.now()} ${(e as Error).stack?.replace(/\n/g, ' | ') ?? String(e)}`);
  process.exit(1);
}
