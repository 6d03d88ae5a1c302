// The advertised address against a real broker process. `docker run -p H:P:9292` puts a port
// forward between client and broker: the client reaches the broker at P, the broker listens on
// 9292. A TCP forwarder plays Docker's part here. Metadata must then name P (the advertised
// port, set by environment as the image does), or every client that follows Metadata connects
// to 9292, where nothing listens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker } from '../helpers/broker-process.ts';
import { sluice } from '../helpers/cli.ts';

/** A port forward like Docker's: listens now, forwards to the target set later. */
async function forwarder(): Promise<{ port: number; target(port: number): void; close(): Promise<void> }> {
  let targetPort = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    sockets.add(inbound);
    inbound.once('close', () => sockets.delete(inbound));
    if (targetPort === 0) return inbound.destroy();
    const outbound = net.connect(targetPort, '127.0.0.1');
    sockets.add(outbound);
    outbound.once('close', () => sockets.delete(outbound));
    inbound.pipe(outbound).pipe(inbound);
    inbound.once('error', () => outbound.destroy());
    outbound.once('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    target: (p) => (targetPort = p),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test('SLUICE_ADVERTISED_PORT: Metadata names the published port, and clients work through the forward', async (t) => {
  const fwd = await forwarder();
  t.after(() => fwd.close());
  const b = await startBroker({ env: { SLUICE_ADVERTISED_HOST: '127.0.0.1', SLUICE_ADVERTISED_PORT: String(fwd.port) } });
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  fwd.target(b.port);
  assert.notEqual(b.port, fwd.port);

  // Asked directly on its listen port, the broker still names the advertised one.
  const direct = new Admin({ bootstrap: b.bootstrap, clientId: 'advertised-test' });
  try {
    const md = await direct.metadata(null);
    assert.deepEqual(md.brokers.map((x) => [x.nodeId, x.host, x.port]), [[0, '127.0.0.1', fwd.port]]);
  } finally {
    await direct.close();
  }

  // A client that only knows the published port produces and consumes through it.
  const bootstrap = `127.0.0.1:${fwd.port}`;
  const admin = new Admin({ bootstrap, clientId: 'advertised-test' });
  await admin.createTopics([{ topic: 'through-forward', partitions: 2, replicationFactor: 1, configs: {} }]);
  await admin.close();
  const producer = new Producer({ bootstrap, clientId: 'advertised-test' });
  for (let i = 0; i < 10; i++) await producer.send({ topic: 'through-forward', key: `k${i}`, value: `v${i}` });
  await producer.close();
  const consumer = new Consumer({ bootstrap, clientId: 'advertised-test' });
  try {
    await consumer.assign([0, 1].map((partition) => ({ topic: 'through-forward', partition, offset: 'earliest' as const })));
    const seen: string[] = [];
    const deadline = Date.now() + 15_000;
    while (seen.length < 10 && Date.now() < deadline) for (const m of await consumer.poll(500)) seen.push(m.value!.toString());
    assert.deepEqual(seen.sort(), Array.from({ length: 10 }, (_, i) => `v${i}`).sort());
  } finally {
    await consumer.close();
  }

  // The CLI as well (cluster describe prints the advertised address).
  const r = await sluice(['cluster', 'describe', '--bootstrap', bootstrap]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^0\\t127\\.0\\.0\\.1\\t${fwd.port}$`, 'm'));
});

test('--advertised-port on the command line beats SLUICE_ADVERTISED_PORT', async (t) => {
  const b = await startBroker({ args: ['--advertised-host', 'sluice.example', '--advertised-port', '19999'], env: { SLUICE_ADVERTISED_PORT: '18888' } });
  t.after(async () => {
    await b.stop();
    b.cleanup();
  });
  const admin = new Admin({ bootstrap: b.bootstrap, clientId: 'advertised-test' });
  try {
    const md = await admin.metadata(null);
    assert.deepEqual(md.brokers.map((x) => [x.host, x.port]), [['sluice.example', 19999]]);
  } finally {
    await admin.close();
  }
});
