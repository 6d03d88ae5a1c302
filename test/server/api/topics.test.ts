// CreateTopics, DeleteTopics, DescribeTopics and CreatePartitions over a real single-broker
// metadata stack (embedded store, LogManager, TopicManager in a temp dir): one entry per request
// entry in request order, the first failing check of SPEC §6.3 / §6.4 / §6.16, NOT_CONTROLLER
// when this broker is not the controller, and DescribeTopics' figures of §6.5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CreatePartitionsResponse } from '../../../protocol/apis/create-partitions.ts';
import type { CreateTopicsResponse } from '../../../protocol/apis/create-topics.ts';
import type { DeleteTopicsResponse } from '../../../protocol/apis/delete-topics.ts';
import type { DescribeTopicsResponse } from '../../../protocol/apis/describe-topics.ts';
import { ErrorCode } from '../../../protocol/errors.ts';
import * as api from '../../../server/api/topics.ts';
import { OFFSETS_TOPIC } from '../../../server/group/offset-store.ts';
import { batch } from '../log/helpers.ts';
import { openStack, PARTITIONS_MAX, replying, replyingAsync } from './stack.ts';

const handleCreateTopics = replyingAsync(api.handleCreateTopics);
const handleDeleteTopics = replyingAsync(api.handleDeleteTopics);
const handleCreatePartitions = replyingAsync(api.handleCreatePartitions);
const handleDescribeTopics = replying(api.handleDescribeTopics);

const entry = (topic: string, partitions: number, replicationFactor = 1, configs: Record<string, string> = {}) => ({ topic, partitions, replicationFactor, configs });

test('CreateTopics: one result per entry in request order, the first failing check of SPEC §6.3', async () => {
  const s = await openStack();
  try {
    const res = (await handleCreateTopics(s.ctx, {
      validateOnly: false,
      topics: [
        entry('a', 3),
        entry('bad name!', 1),
        entry('__mine', 1),
        entry('z', 0),
        entry('z', PARTITIONS_MAX + 1),
        entry('z', 1, 2), // one live broker
        entry('z', 1, 0),
        entry('z', 1, 1, { 'no.such.key': '1' }),
        entry('z', 1, 1, { 'min.insync.replicas': '2' }),
        entry('bad name!', 0, 5), // name is checked before partitions and the factor
        entry('a', 1), // repeated: exists now
        entry('b', 2, -1, { 'retention.ms': '1000' }),
      ],
    })).control as CreateTopicsResponse;
    assert.deepEqual(res.topics.map((t) => [t.topic, t.errorCode]), [
      ['a', 0],
      ['bad name!', ErrorCode.INVALID_TOPIC],
      ['__mine', ErrorCode.INVALID_TOPIC],
      ['z', ErrorCode.INVALID_PARTITIONS],
      ['z', ErrorCode.INVALID_PARTITIONS],
      ['z', ErrorCode.INVALID_REPLICATION_FACTOR],
      ['z', ErrorCode.INVALID_REPLICATION_FACTOR],
      ['z', ErrorCode.INVALID_CONFIG],
      ['z', ErrorCode.INVALID_CONFIG],
      ['bad name!', ErrorCode.INVALID_TOPIC],
      ['a', ErrorCode.TOPIC_ALREADY_EXISTS],
      ['b', 0],
    ]);
    for (const t of res.topics) {
      if (t.errorCode === 0) assert.equal(t.errorMessage, null, `${t.topic}: errorMessage is nil on success`);
      else assert.equal(typeof t.errorMessage, 'string', `${t.topic}: an error carries its message`);
    }
    // Created: in the metadata when the response is sent, led by this broker at epoch 0, full ISR.
    assert.equal(s.store.getTopic('a')?.partitions, 3);
    assert.deepEqual(s.topics.partitionState('a', 2), { ...s.topics.partitionState('a', 2), leader: 0, leaderEpoch: 0, replicas: [0], isr: [0] });
    assert.equal(s.store.getTopic('b')?.replicationFactor, 1, 'replicationFactor -1 is min(3, live brokers)');
    assert.equal(s.store.getTopic('z'), undefined);
  } finally {
    await s.close();
  }
});

test('CreateTopics validateOnly runs the checks and creates nothing; a repeated name is not TOPIC_ALREADY_EXISTS then', async () => {
  const s = await openStack();
  try {
    const res = (await handleCreateTopics(s.ctx, { validateOnly: true, topics: [entry('v', 2), entry('v', 2), entry('v', 0)] })).control as CreateTopicsResponse;
    assert.deepEqual(res.topics.map((t) => [t.topic, t.errorCode]), [['v', 0], ['v', 0], ['v', ErrorCode.INVALID_PARTITIONS]]);
    assert.equal(s.store.getTopic('v'), undefined);
    assert.deepEqual(s.topics.names(), []);
  } finally {
    await s.close();
  }
});

test('not the controller: every entry of CreateTopics, DeleteTopics and CreatePartitions gets NOT_CONTROLLER, checked first', async () => {
  const s = await openStack({ elected: false });
  try {
    assert.equal(s.controller.active, false);
    const created = (await handleCreateTopics(s.ctx, { validateOnly: false, topics: [entry('ok', 1), entry('bad name!', 0)] })).control as CreateTopicsResponse;
    assert.deepEqual(created.topics.map((t) => [t.topic, t.errorCode]), [['ok', ErrorCode.NOT_CONTROLLER], ['bad name!', ErrorCode.NOT_CONTROLLER]]);
    assert.equal(s.store.getTopic('ok'), undefined, 'nothing created');
    const deleted = (await handleDeleteTopics(s.ctx, { topics: ['missing'] })).control as DeleteTopicsResponse;
    assert.deepEqual(deleted.topics, [{ topic: 'missing', errorCode: ErrorCode.NOT_CONTROLLER }]);
    const grown = (await handleCreatePartitions(s.ctx, { validateOnly: false, topics: [{ topic: 'missing', count: 0 }] })).control as CreatePartitionsResponse;
    assert.deepEqual(grown.topics.map((t) => [t.topic, t.errorCode]), [['missing', ErrorCode.NOT_CONTROLLER]]);
  } finally {
    await s.close();
  }
});

test('DeleteTopics: per entry in order; unknown, invalid and repeated names UNKNOWN_TOPIC_OR_PARTITION, internal INVALID_TOPIC', async () => {
  const s = await openStack();
  try {
    await handleCreateTopics(s.ctx, { validateOnly: false, topics: [entry('d', 2), entry('keep', 1)] });
    await s.topics.ensureInternal(OFFSETS_TOPIC, 1, {}, 1);
    const res = (await handleDeleteTopics(s.ctx, { topics: ['d', 'nope', 'bad name!', 'd', OFFSETS_TOPIC] })).control as DeleteTopicsResponse;
    assert.deepEqual(res.topics, [
      { topic: 'd', errorCode: 0 },
      { topic: 'nope', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION },
      { topic: 'bad name!', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION },
      { topic: 'd', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION },
      { topic: OFFSETS_TOPIC, errorCode: ErrorCode.INVALID_TOPIC },
    ]);
    assert.equal(s.store.getTopic('d'), undefined);
    assert.equal(s.topics.get('d'), undefined);
    assert.ok(s.store.getTopic('keep'));
    assert.ok(s.store.getTopic(OFFSETS_TOPIC), 'the internal topic stays');
  } finally {
    await s.close();
  }
});

test('CreatePartitions: checks of SPEC §6.16 in order, new partitions added, validateOnly changes nothing', async () => {
  const s = await openStack();
  try {
    await handleCreateTopics(s.ctx, { validateOnly: false, topics: [entry('p', 2)] });
    await s.topics.ensureInternal(OFFSETS_TOPIC, 1, {}, 1);
    const dry = (await handleCreatePartitions(s.ctx, { validateOnly: true, topics: [{ topic: 'p', count: 5 }] })).control as CreatePartitionsResponse;
    assert.deepEqual(dry.topics, [{ topic: 'p', errorCode: 0, errorMessage: null }]);
    assert.equal(s.store.getTopic('p')?.partitions, 2, 'validateOnly changes nothing');
    const res = (await handleCreatePartitions(s.ctx, {
      validateOnly: false,
      topics: [
        { topic: 'nope', count: 0 }, // existence before the count
        { topic: OFFSETS_TOPIC, count: 0 }, // internal before the count
        { topic: 'p', count: 2 }, // equal count is an error
        { topic: 'p', count: 1 },
        { topic: 'p', count: PARTITIONS_MAX + 1 },
        { topic: 'p', count: 4 },
        { topic: 'p', count: 4 }, // now equal
      ],
    })).control as CreatePartitionsResponse;
    assert.deepEqual(res.topics.map((t) => [t.topic, t.errorCode]), [
      ['nope', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      [OFFSETS_TOPIC, ErrorCode.INVALID_TOPIC],
      ['p', ErrorCode.INVALID_PARTITIONS],
      ['p', ErrorCode.INVALID_PARTITIONS],
      ['p', ErrorCode.INVALID_PARTITIONS],
      ['p', 0],
      ['p', ErrorCode.INVALID_PARTITIONS],
    ]);
    assert.equal(res.topics[5]!.errorMessage, null);
    assert.equal(typeof res.topics[0]!.errorMessage, 'string');
    assert.equal(s.store.getTopic('p')?.partitions, 4);
    assert.equal(s.topics.partitionState('p', 3)?.leader, 0);
    assert.equal(s.topics.partitionState('p', 3)?.leaderEpoch, 0);
  } finally {
    await s.close();
  }
});

test('DescribeTopics: request order with UNKNOWN_TOPIC_OR_PARTITION ({} and []), nil = every topic sorted, effective configs and log figures', async () => {
  const s = await openStack();
  try {
    await handleCreateTopics(s.ctx, { validateOnly: false, topics: [entry('y', 2, 1, { 'retention.ms': '12345' }), entry('x', 1)] });
    s.topics.partition('y', 1)!.append(batch(3));
    const res = (handleDescribeTopics(s.ctx, { topics: ['y', 'nope', 'x'] }).control as DescribeTopicsResponse).topics;
    assert.deepEqual(res.map((t) => [t.topic, t.errorCode]), [['y', 0], ['nope', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION], ['x', 0]]);
    assert.deepEqual(res[1], { topic: 'nope', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, configs: {}, partitions: [] });
    const y = res[0]!;
    assert.equal(y.configs['retention.ms'], '12345', 'an override');
    assert.equal(typeof y.configs['cleanup.policy'], 'string', 'every key, defaults included');
    assert.ok(Object.keys(y.configs).length > 2);
    assert.deepEqual(y.partitions.map((p) => [p.partition, p.logStartOffset, p.logEndOffset, p.segments]), [[0, 0, 0, 1], [1, 0, 3, 1]]);
    assert.equal(y.partitions[0]!.sizeBytes, 0);
    assert.ok(y.partitions[1]!.sizeBytes > 0);
    const all = (handleDescribeTopics(s.ctx, { topics: null }).control as DescribeTopicsResponse).topics;
    assert.deepEqual(all.map((t) => t.topic), ['x', 'y'], 'nil: every topic, sorted by name');
  } finally {
    await s.close();
  }
});
