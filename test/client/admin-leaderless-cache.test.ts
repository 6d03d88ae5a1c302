/**
 * Metadata fetched while an election was under way names no leader. The client must not keep
 * answering "no leader" from that cache until it ages out (a cluster test waited 10 s on it
 * after every broker restarted): Admin.listOffsets and Cluster.leaderConnection ask again once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admin } from '../../client/admin.ts';
import { Cluster } from '../../client/cluster.ts';
import { withFake } from './fake-broker.ts';

test('listOffsets looks the leader up again when the cached metadata has none', async () => {
  await withFake(async (b) => {
    b.append('t', ['a', 'b', 'c']);
    const admin = new Admin({ bootstrap: b.bootstrap });
    try {
      b.leaderlessMetadataAnswers = 1;
      assert.equal(await admin.listOffsets('t', 0, 'latest'), 3);
      assert.equal(b.metadataRequests >= 2, true, 'asked again after the leaderless answer');
    } finally {
      await admin.close();
    }
  });
});

test('leaderConnection looks the leader up again when the cached metadata has none; still none is NOT_LEADER', async () => {
  await withFake(async (b) => {
    b.append('t', ['a']);
    const cluster = new Cluster({ bootstrap: b.bootstrap, clientId: 'test' });
    try {
      b.leaderlessMetadataAnswers = 1;
      await cluster.topic('t');
      assert.ok(await cluster.leaderConnection('t', 0));
      b.leaderlessMetadataAnswers = 2;
      await cluster.topic('t', true);
      await assert.rejects(cluster.leaderConnection('t', 0), /has no leader/);
    } finally {
      await cluster.close();
    }
  });
});
