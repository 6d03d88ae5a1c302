// groupsMax (issue item 10): a coordinator holds a bounded number of groups, whether they come
// from joins or from commits outside a group; one more gets GROUP_MAX_SIZE_REACHED, existing
// groups keep working, and deleting one makes room. Real broker process, raw TCP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKey } from '../../protocol/api-keys.ts';
import { ErrorCode } from '../../protocol/errors.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { RawSocket, requestFrame } from '../helpers/raw-socket.ts';

let broker: BrokerProcess;
let s: RawSocket;
let nextId = 1;

async function call(apiKey: number, control: unknown): Promise<any> {
  const id = nextId++;
  s.write(requestFrame(apiKey, 0, id, control));
  await s.waitFor(id, 30_000);
  const r = s.responses[id - 1]!;
  assert.equal(r.correlationId, id);
  assert.equal(r.errorCode, 0);
  return r.control;
}

function commit(groupId: string): Promise<any> {
  return call(ApiKey.OFFSET_COMMIT, { groupId, memberId: '', memberEpoch: -1, topics: [{ topic: 't', partitions: [{ partition: 0, offset: 0 }] }] });
}

function join(groupId: string): Promise<any> {
  return call(ApiKey.CONSUMER_GROUP_HEARTBEAT, {
    groupId, memberId: '', memberEpoch: 0, rebalanceTimeoutMs: null, sessionTimeoutMs: null,
    subscribedTopicNames: ['t'], subscribedTopicRegex: null, assignor: null, ownedPartitions: null,
  });
}

before(async () => {
  broker = await startBroker({ args: ['--groups-max', '3'] });
  s = await RawSocket.connect(broker.port);
  const c = await call(ApiKey.CREATE_TOPICS, { topics: [{ topic: 't', partitions: 1, replicationFactor: 1, configs: {} }], validateOnly: false });
  assert.equal(c.topics[0].errorCode, 0);
});

after(async () => {
  s?.close();
  const code = await broker.stop();
  broker.cleanup();
  assert.equal(code, 0, `broker exited with ${code}:\n${broker.log()}`);
});

test('a new group beyond groupsMax gets GROUP_MAX_SIZE_REACHED; existing groups still work; deleting one makes room', async () => {
  assert.equal((await commit('g1')).errorCode, 0);
  assert.equal((await commit('g2')).errorCode, 0);
  assert.equal((await join('g3')).errorCode, 0);

  const refusedCommit = await commit('g4');
  assert.equal(refusedCommit.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
  assert.match(refusedCommit.errorMessage, /groupsMax 3/);
  assert.equal(refusedCommit.topics[0].partitions[0].errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
  const refusedJoin = await join('g5');
  assert.equal(refusedJoin.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
  assert.equal(refusedJoin.memberEpoch, -1);

  // The refused groups do not exist; the others are untouched.
  const listed = await call(ApiKey.LIST_GROUPS, {});
  assert.deepEqual(listed.groups.map((g: any) => g.groupId).sort(), ['g1', 'g2', 'g3']);
  assert.equal((await commit('g1')).errorCode, 0);
  assert.equal((await join('g3')).errorCode, 0, 'another member joins an existing group');

  const deleted = await call(ApiKey.DELETE_GROUPS, { groupIds: ['g2'] });
  assert.equal(deleted.groups[0].errorCode, 0);
  assert.equal((await commit('g4')).errorCode, 0, 'room again after a delete');
});
