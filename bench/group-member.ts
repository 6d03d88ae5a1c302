/**
 * One consumer-group member for `bench rebalance`, run as a child process:
 *   node --import tsx bench/group-member.ts '<MemberConfig as JSON>'
 * It consumes the topic in a loop and reports on stdout, one JSON object per line:
 *   {"e":"ready"}                        the process is up and about to join (first poll)
 *   {"e":"owned","partitions":[...]}     after every change of what it owns
 *   {"e":"consumed","partition":p}       the first message of p consumed since p was assigned
 *   {"e":"error","message":"..."}        poll() failed; the process exits 1
 * It closes the consumer (leaving the group) and exits on SIGTERM or when stdin ends (the
 * bench died), so no member outlives the bench.
 */
import { GroupConsumer } from '../client/group/consumer.ts';

export interface MemberConfig {
  bootstrap: string;
  topic: string;
  groupId: string;
  clientId: string;
  sessionTimeoutMs: number;
}

export type MemberEvent =
  | { e: 'ready' }
  | { e: 'owned'; partitions: number[] }
  | { e: 'consumed'; partition: number }
  | { e: 'error'; message: string };

const cfg = JSON.parse(process.argv[2] ?? '') as MemberConfig;

function report(ev: MemberEvent): void {
  process.stdout.write(`${JSON.stringify(ev)}\n`);
}

/** Partitions with a message consumed since they were (last) assigned. */
const seen = new Set<number>();
const consumer = new GroupConsumer({
  bootstrap: cfg.bootstrap,
  clientId: cfg.clientId,
  groupId: cfg.groupId,
  topics: [cfg.topic],
  autoOffsetReset: 'earliest',
  sessionTimeoutMs: cfg.sessionTimeoutMs,
  onAssignmentChange: (e) => {
    for (const tp of e.revoked) seen.delete(tp.partition);
    report({ e: 'owned', partitions: e.owned.filter((tp) => tp.topic === cfg.topic).map((tp) => tp.partition).sort((a, b) => a - b) });
  },
});

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(code), 5000);
  force.unref();
  await consumer.close().catch(() => {});
  process.exit(code);
}
process.once('SIGTERM', () => void stop(0));
process.once('SIGINT', () => void stop(0));
process.stdin.once('end', () => void stop(0));
process.stdin.resume();

report({ e: 'ready' });
while (!stopping) {
  let msgs;
  try {
    msgs = await consumer.poll();
  } catch (e) {
    if (stopping) break;
    report({ e: 'error', message: (e as Error).message });
    await stop(1);
    break;
  }
  for (const m of msgs) {
    if (!seen.has(m.partition)) {
      seen.add(m.partition);
      report({ e: 'consumed', partition: m.partition });
    }
  }
}
