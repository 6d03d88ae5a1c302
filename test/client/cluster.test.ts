/**
 * Cluster lanes (client/cluster.ts): one metadata cache shared by a client's parts, each part
 * with connections (and a clientId) of its own. Real broker for the metadata and connections;
 * a loopback listener that records request headers for the clientId each lane sends.
 */
import { strict as assert } from 'node:assert';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { ApiKey } from '../../protocol/api-keys.ts';
import { FRAME_LENGTH_BYTES } from '../../protocol/frame.ts';
import { decodeRequestHeader } from '../../protocol/header.ts';
import { Admin } from '../../client/admin.ts';
import { Cluster } from '../../client/cluster.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';

let broker: BrokerProcess;

before(async () => {
  broker = await startBroker();
});

after(async () => {
  await broker?.stop();
  broker?.cleanup();
});

test('lanes share one metadata cache but not their connections; closing a lane leaves the others open', async () => {
  const admin = new Admin({ bootstrap: broker.bootstrap });
  const root = new Cluster({ bootstrap: broker.bootstrap, clientId: 'member' });
  const lane = root.lane({ clientId: 'member-fetch' });
  try {
    await admin.createTopics([{ topic: 'lanes', partitions: 2 }]);
    assert.equal(lane.cachedTopic('lanes'), undefined);
    // Metadata learnt through the root is the lane's without a request of its own, and back.
    await root.refreshMetadata(['lanes']);
    assert.deepEqual(lane.cachedTopic('lanes'), root.cachedTopic('lanes'));
    const later = root.lane({ clientId: 'member-admin' });
    assert.deepEqual(later.cachedTopic('lanes'), root.cachedTopic('lanes'));
    const leader = lane.leaderOf('lanes', 1);
    assert.ok(leader >= 0, 'the lane knows the leader from the shared cache');

    const rootConn = await root.connectionToNode(leader);
    const laneConn = await lane.connectionToNode(leader);
    assert.notEqual(rootConn, laneConn, 'each lane has its own connection to a broker');
    assert.equal(await lane.connectionToNode(leader), laneConn, 'and reuses it');

    lane.close();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(laneConn.closed, true);
    assert.equal(rootConn.closed, false, 'closing a lane leaves the root connection open');
    await assert.rejects(lane.connectionToNode(leader), /closed/);
    // The root and the other lanes go on with the same cache.
    assert.equal((await root.topic('lanes')).partitions.length, 2);
    assert.equal((await later.topic('lanes')).partitions.length, 2);
    later.close();
  } finally {
    root.close();
    await admin.close();
  }
});

test('each lane sends its own clientId on its own connection', async () => {
  // A listener that never answers: it records the clientId of every request per socket.
  const seen: Array<{ socket: number; clientId: string | null; apiKey: number }> = [];
  const sockets = new Set<net.Socket>();
  let socketCount = 0;
  const server = net.createServer((s) => {
    const id = socketCount++;
    sockets.add(s);
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= FRAME_LENGTH_BYTES && buf.length >= FRAME_LENGTH_BYTES + buf.readInt32BE(0)) {
        const len = buf.readInt32BE(0);
        const h = decodeRequestHeader(buf.subarray(FRAME_LENGTH_BYTES, FRAME_LENGTH_BYTES + len));
        seen.push({ socket: id, clientId: h.clientId, apiKey: h.apiKey });
        buf = buf.subarray(FRAME_LENGTH_BYTES + len);
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const root = new Cluster({ bootstrap: `127.0.0.1:${port}`, clientId: 'member', requestTimeoutMs: 300 });
  const lane = root.lane({ clientId: 'member-retry', requestTimeoutMs: 300 });
  try {
    const a = await root.connectionTo('127.0.0.1', port);
    const b = await lane.connectionTo('127.0.0.1', port);
    await Promise.allSettled([a.send(ApiKey.METADATA, { topics: [] }), b.send(ApiKey.METADATA, { topics: [] })]);
    assert.equal(seen.length, 2);
    const bySocket = new Map(seen.map((x) => [x.socket, x.clientId]));
    assert.equal(bySocket.size, 2, 'two connections');
    assert.deepEqual([...bySocket.values()].sort(), ['member', 'member-retry']);
  } finally {
    root.close();
    lane.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
