// The etcd store under a refused write, against a real etcd whose space quota is used up
// (its "database space exceeded" alarm: etcd's full disk): createTopic fails with
// STORAGE_ERROR (not an unexpected error), nothing is applied to the cache, and etcd has
// nothing either. Whatever deleteTopic answers, the cache and etcd agree with the answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import { EtcdMetadataStore } from '../../../server/metadata/etcd-store.ts';
import type { TopicRecord } from '../../../server/metadata/metadata-store.ts';
import { etcdAvailable, startEtcd } from '../../helpers/etcd-process.ts';

const QUOTA_BYTES = 8 * 1024 * 1024;
const FILL_VALUE_BYTES = 512 * 1024;

function topic(name: string, partitions = 3): TopicRecord {
  return { name, id: randomUUID(), partitions, replicationFactor: 1, configs: {}, createdAtMs: Date.now() };
}

test('etcd out of space: createTopic answers STORAGE_ERROR and applies nothing; deleteTopic answers consistently', async (t) => {
  if (!etcdAvailable()) {
    t.skip('no etcd binary');
    return;
  }
  const etcd = await startEtcd({ extraArgs: ['--quota-backend-bytes', String(QUOTA_BYTES)] });
  const client = new Etcd3({ hosts: etcd.clientUrl });
  const stores: EtcdMetadataStore[] = [];
  try {
    const store = new EtcdMetadataStore(`etcd://${etcd.endpoints}`, { requestTimeoutMs: 5000 });
    stores.push(store);
    await store.open();
    await store.createTopic(topic('kept'));
    // Fill etcd's quota with junk until it refuses writes.
    let refused: Error | undefined;
    const junk = Buffer.alloc(FILL_VALUE_BYTES, 0x61);
    for (let i = 0; i < 4 * (QUOTA_BYTES / FILL_VALUE_BYTES) && !refused; i++) {
      await client.put(`/junk/${i}`).value(junk).exec().catch((e: Error) => (refused = e));
    }
    assert.ok(refused, 'etcd refused a write once its quota was used up');
    assert.match(refused!.message, /space/i);

    await assert.rejects(store.createTopic(topic('ghost')), (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.STORAGE_ERROR);
    assert.equal(store.getTopic('ghost'), undefined, 'a refused creation is not applied');

    let deleted: boolean | undefined;
    try {
      deleted = await store.deleteTopic('kept');
    } catch (e) {
      assert.ok(e instanceof SluiceError && e.code === ErrorCode.STORAGE_ERROR, String(e));
    }
    assert.equal(store.getTopic('kept') === undefined, deleted === true, `deleteTopic answered ${deleted}, the cache disagrees`);

    // etcd itself (reads still work without space; a new store could not even open, since
    // its create-if-absent of the cluster id is a write) agrees with both answers.
    // A new client: the filler's has its circuit breaker open after the refused put.
    const reader = new Etcd3({ hosts: etcd.clientUrl });
    try {
      assert.equal(await reader.get('/sluice/topics/ghost').string(), null, 'the refused topic is not in etcd');
      assert.equal((await reader.get('/sluice/topics/kept').string()) === null, deleted === true, 'etcd agrees with the deleteTopic answer');
    } finally {
      reader.close();
    }
  } finally {
    await Promise.allSettled(stores.map((s) => s.close()));
    client.close();
    await etcd.stop();
  }
});
