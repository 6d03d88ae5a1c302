/**
 * The console in a cluster (real etcd, two broker processes, the console on broker 1 only):
 * it shows both brokers and the controller, leaders on either broker, and browses a
 * partition led by the other broker, all through its client connection to its own broker;
 * with that broker stalled (SIGSTOP), a page needing it answers 504 at the page timeout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admin } from '../../client/admin.ts';
import { PAGE_TIMEOUT_MS } from '../../console/console-server.ts';
import { Producer } from '../../client/producer.ts';
import { startBroker, type BrokerProcess } from '../helpers/broker-process.ts';
import { startEtcd } from '../helpers/etcd-process.ts';
import { freePort } from '../helpers/metrics-scrape.ts';

test('a console on one broker shows the cluster and reads a partition the other broker leads', async (t) => {
  const etcd = await startEtcd();
  const brokers: BrokerProcess[] = [];
  let admin: Admin | null = null;
  t.after(async () => {
    await admin?.close();
    await Promise.all(brokers.map(async (b) => {
      await b.stop();
      b.cleanup();
    }));
    await etcd.stop();
  });
  const consolePort = await freePort();
  const common = ['--metadata', `etcd://${etcd.endpoints}`, '--broker-session-ttl-seconds', '2', '--offsets-topic-replication-factor', '1', '--transaction-state-replication-factor', '1'];
  brokers.push(...(await Promise.all([
    startBroker({ args: ['--broker-id', '1', ...common, '--console-port', String(consolePort)] }),
    startBroker({ args: ['--broker-id', '2', ...common] }),
  ])));
  admin = new Admin({ bootstrap: brokers.map((b) => b.bootstrap).join(',') });
  // Four single-replica partitions over two brokers: some are led by broker 2.
  await admin.createTopics([{ topic: 'spread', partitions: 4, replicationFactor: 1 }]);
  let md = await admin.metadata(['spread']);
  const deadline = Date.now() + 20_000;
  while (md.topics[0]!.partitions.some((p) => p.leader < 0) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    md = await admin.metadata(['spread']);
  }
  const remote = md.topics[0]!.partitions.find((p) => p.leader === 2);
  assert.ok(remote, `no partition led by broker 2: ${JSON.stringify(md.topics[0]!.partitions)}`);
  const producer = new Producer({ bootstrap: brokers[1]!.bootstrap, lingerMs: 0 });
  try {
    await producer.send({ topic: 'spread', partition: remote.partition, key: 'far', value: 'led by broker 2 <ok>' });
  } finally {
    await producer.close();
  }
  const get = async (path: string): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${consolePort}${path}`, { signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    assert.equal(res.status, 200, `${path}: ${text}`);
    return text;
  };
  const brokersPage = await get('/brokers');
  assert.match(brokersPage, new RegExp(`<tr><td>1</td><td>127\\.0\\.0\\.1</td><td>${brokers[0]!.port}</td>`));
  assert.match(brokersPage, new RegExp(`<tr><td>2</td><td>127\\.0\\.0\\.1</td><td>${brokers[1]!.port}</td>`));
  assert.match(brokersPage, new RegExp(`controller: broker ${md.controllerId}\\.`));
  const topicPage = await get('/topic?name=spread');
  assert.match(topicPage, new RegExp(`<tr><td>${remote.partition}</td><td class="">2</td>`));
  const messages = await get(`/messages?topic=spread&partition=${remote.partition}`);
  assert.match(messages, /<td class="value"><pre class="text">led by broker 2 &lt;ok&gt;<\/pre>/);

  // Broker 2 stalls (SIGSTOP): a page that needs it answers 504 at the page timeout instead of
  // hanging, and pages that do not need it still answer meanwhile.
  brokers[1]!.proc.kill('SIGSTOP');
  try {
    const started = Date.now();
    const stalled = fetch(`http://127.0.0.1:${consolePort}/messages?topic=spread&partition=${remote.partition}`, { signal: AbortSignal.timeout(30_000) });
    const during = await fetch(`http://127.0.0.1:${consolePort}/topics`, { signal: AbortSignal.timeout(30_000) });
    assert.equal(during.status, 200);
    assert.ok(Date.now() - started < PAGE_TIMEOUT_MS, 'another page answered while one waited for the stalled broker');
    const res = await stalled;
    const tookMs = Date.now() - started;
    const text = await res.text();
    // The console's request timeout (8 s) or the page timeout (10 s), whichever comes first.
    assert.equal(res.status, 504, text);
    assert.match(text, /REQUEST_TIMED_OUT: no response from|did not answer within/);
    assert.ok(tookMs < PAGE_TIMEOUT_MS + 5000, `answered after ${tookMs} ms`);
  } finally {
    brokers[1]!.proc.kill('SIGCONT');
  }
});
