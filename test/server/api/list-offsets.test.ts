// The ListOffsets handler over hand-made partitions: errors in SPEC §6.8 order, earliest,
// latest (the high watermark) and by time (below the high watermark only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ListOffsetsResponse } from '../../../protocol/apis/list-offsets.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import { handleListOffsets } from '../../../server/api/list-offsets.ts';
import type { Reply } from '../../../server/network/reply.ts';
import { batch, tempDir } from '../log/helpers.ts';
import { addFollower, BROKER_ID, FakeRegistry, fakeContext, leaderState, openPartition } from '../partition/helpers.ts';

test('errors in SPEC order, then earliest, latest and by time, bounded by the high watermark', async () => {
  const t = tempDir();
  const led = openPartition(t.dir, 't', 0, { state: leaderState() });
  const followed = openPartition(t.dir, 't', 1, { state: leaderState({ leader: 2 }) });
  const replicated = openPartition(t.dir, 'r', 0, { state: leaderState({ replicas: [BROKER_ID, 2], isr: [BROKER_ID, 2] }) });
  addFollower(replicated, 2);
  const registry = new FakeRegistry();
  registry.add('t', 3, [led, followed]);
  registry.add('r', 1, [replicated]);
  registry.add('__internal', 2, []);
  const f = fakeContext(registry, [led, followed, replicated]);
  led.appendAsLeader(batch(5, 1000), 1); // timestamps 1000..1004
  led.appendAsLeader(batch(5, 2000), 1); // 2000..2004
  replicated.appendAsLeader(batch(3, 1000), 1);
  replicated.followers.get(2)!.logEndOffset = 2; // high watermark 2
  replicated.advanceHighWatermark();
  const req = (entries: Array<[string, number, number]>) => {
    const topics: Array<{ topic: string; partitions: Array<{ partition: number; timestamp: number }> }> = [];
    for (const [topic, partition, timestamp] of entries) {
      let x = topics.find((y) => y.topic === topic);
      if (!x) topics.push((x = { topic, partitions: [] }));
      x.partitions.push({ partition, timestamp });
    }
    return { topics };
  };
  const reply = (await handleListOffsets(f.ctx, req([['t', 0, -2], ['t', 0, -1], ['t', 0, 1003], ['t', 0, 1500], ['t', 0, 9999], ['t', 0, -3], ['t', 1, -1], ['t', 2, -1], ['t', 3, -1], ['__internal', 0, -1], ['__internal', 5, -1], ['r', 0, -1], ['r', 0, 1000], ['r', 0, 1002]]))) as Reply;
  const results = (reply.control as ListOffsetsResponse).topics.flatMap((x) => x.partitions.map((p) => [x.topic, p.partition, p.errorCode, p.offset, p.timestamp]));
  assert.deepEqual(results, [
    ['t', 0, 0, 0, -1],
    ['t', 0, 0, 10, -1],
    ['t', 0, 0, 3, 1003],
    ['t', 0, 0, 5, 2000],
    ['t', 0, 0, 10, -1],
    ['t', 0, ErrorCode.MALFORMED_REQUEST, -1, -1],
    ['t', 1, ErrorCode.NOT_LEADER, -1, -1],
    ['t', 2, ErrorCode.NOT_LEADER, -1, -1],
    ['t', 3, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1],
    ['__internal', 0, ErrorCode.INVALID_TOPIC, -1, -1],
    ['__internal', 5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1],
    ['r', 0, 0, 2, -1],
    ['r', 0, 0, 0, 1000],
    ['r', 0, 0, 2, -1], // offset 2 has timestamp 1002 but is not below the high watermark
  ]);
  await f.close();
  t.cleanup();
});
