/**
 * The message browser's read: one page of one partition, from an offset, from a time, or
 * (neither given) the last page. It reads with a plain Consumer (no group: nothing is
 * committed, no member joins anything) over the real protocol, like `sluice consume`.
 *
 * Bounds: at most `limit` messages (the caller caps it at MESSAGES_PER_PAGE_MAX), Fetch
 * responses of at most FETCH_BYTES_MAX, and the read ends at `deadlineMs` whatever it has:
 * a page is never waited on longer than the console's request timeout.
 */
import type { Admin } from '../client/admin.ts';
import type { ClientSecurity } from '../client/cluster.ts';
import { Consumer, type Message } from '../client/consumer.ts';
import { assert } from '../server/assert.ts';

export const MESSAGES_PER_PAGE_MAX = 100;
export const MESSAGES_PER_PAGE_DEFAULT = 20;
/** Bound on one Fetch response while browsing (the first batch of a partition comes whole anyway). */
export const FETCH_BYTES_MAX = 4 * 1024 * 1024;
const POLL_MS = 200;

export type BrowseFrom = { offset: number } | { timeMs: number } | 'last';

export interface BrowsePage {
  messages: Message[];
  /** Where this page started. */
  startOffset: number;
  /** Where the next page starts: after the last message shown, or where the read stopped. */
  nextOffset: number;
  logStartOffset: number;
  logEndOffset: number;
  /** True when the read stopped at the deadline before the page was full or the log end reached. */
  timedOut: boolean;
}

export async function browsePartition(admin: Admin, bootstrap: string, security: ClientSecurity, topic: string, partition: number, from: BrowseFrom, limit: number, deadlineAtMs: number): Promise<BrowsePage> {
  assert(limit >= 1 && limit <= MESSAGES_PER_PAGE_MAX, 'browse limit out of bounds');
  const [logStartOffset, logEndOffset] = await Promise.all([admin.listOffsets(topic, partition, 'earliest'), admin.listOffsets(topic, partition, 'latest')]);
  let start: number;
  if (from === 'last') start = Math.max(logStartOffset, logEndOffset - limit);
  else if ('offset' in from) start = Math.min(Math.max(from.offset, logStartOffset), logEndOffset);
  else {
    const at = await admin.listOffsets(topic, partition, from.timeMs);
    start = at < 0 ? logEndOffset : at;
  }
  const page: BrowsePage = { messages: [], startOffset: start, nextOffset: start, logStartOffset, logEndOffset, timedOut: false };
  if (start >= logEndOffset) return page;
  const consumer = new Consumer({
    bootstrap,
    ...security,
    clientId: 'sluice-console',
    autoOffsetReset: 'earliest',
    maxBytes: FETCH_BYTES_MAX,
    partitionMaxBytes: FETCH_BYTES_MAX,
    maxPollRecords: limit,
    maxWaitMs: POLL_MS,
    requestTimeoutMs: Math.max(1000, deadlineAtMs - Date.now()),
  });
  try {
    await consumer.assign([{ topic, partition, offset: start }]);
    while (page.messages.length < limit) {
      const position = consumer.position(topic, partition);
      page.nextOffset = position;
      if (position >= logEndOffset) break;
      const left = deadlineAtMs - Date.now();
      if (left <= 0) {
        page.timedOut = true;
        break;
      }
      for (const m of await consumer.poll(Math.min(POLL_MS, left))) {
        if (page.messages.length >= limit || m.offset >= logEndOffset) break;
        page.messages.push(m);
        page.nextOffset = m.offset + 1;
      }
    }
  } finally {
    await consumer.close();
  }
  return page;
}
