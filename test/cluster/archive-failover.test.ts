// Tiered storage across a leader failover (SPEC §7.10): 3 brokers, real etcd, RF 3, one
// archive directory shared by the brokers (as an NFS mount would be). The leader is killed
// (SIGKILL) while it is archiving; the new leader continues from the committed archive state
// in etcd: the segments committed before the kill are not uploaded again (their manifests are
// byte for byte the old ones), and the archive stays contiguous from offset 0 to its new end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { decodeManifest, type SegmentManifest } from '../../server/archive/segment-manifest.ts';
import { parseSegmentKey } from '../../server/archive/archive-keys.ts';
import { tempDir } from '../helpers/broker-process.ts';
import { TestCluster } from '../helpers/cluster.ts';

const TOPIC = 'arch-ha';

async function until(what: string, cond: () => Promise<boolean>, waitMs = 30_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > deadline) assert.fail(`timed out after ${waitMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The partition folder's manifests, by file name, with their bytes. */
function manifests(archiveDir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const top of readdirSync(archiveDir)) {
    if (!top.startsWith(`${TOPIC}-`)) continue;
    const dir = join(archiveDir, top, '0');
    for (const f of readdirSync(dir)) if (f.endsWith('.manifest')) out.set(f, readFileSync(join(dir, f)));
  }
  return out;
}

test('kill the leader mid-archive: the new leader continues from the committed state, no committed segment uploaded again, no gap', { timeout: 120_000 }, async (t) => {
  const archiveDir = tempDir('sluice-archive-');
  const c = await TestCluster.start({
    brokers: 3,
    extraArgs: ['--archive-dir', archiveDir, '--archive-upload-bytes-per-sec', String(48 * 1024), '--archive-check-interval-ms', '20', '--log-level', 'warn'],
  });
  t.after(async () => {
    await c.stop();
    rmSync(archiveDir, { recursive: true, force: true });
  });
  const admin = new Admin({ bootstrap: c.bootstrap, requestTimeoutMs: 10_000 });
  const values: string[] = [];
  try {
    await admin.createTopics([{ topic: TOPIC, partitions: 1, replicationFactor: 3, configs: { 'archive.enable': 'true', 'segment.bytes': '16384', 'min.insync.replicas': '2' } }]);
    const producer = new Producer({ bootstrap: c.bootstrap, acks: -1, lingerMs: 1 });
    for (let i = 0; i < 600; i += 20) {
      const group = Array.from({ length: 20 }, (_, k) => `${i + k}:${'y'.repeat(300)}`);
      values.push(...group);
      await Promise.all(group.map((v) => producer.send({ topic: TOPIC, partition: 0, value: v })));
    }
    await producer.close();
    // Mid-archive: some segments committed, more waiting behind the throttle.
    let before = { end: -1, leader: -1 };
    await until('some segments committed, more to go', async () => {
      const d = await admin.describeArchive([TOPIC]);
      const p = d.topics[0]!.partitions[0]!;
      before = { end: p.archiveEndOffset, leader: p.brokerId };
      return p.leader && p.archiveEndOffset > 0 && p.lagSegments >= 2;
    });
    const committedBefore = new Map([...manifests(archiveDir)].filter(([f]) => parseSegmentKey(f)!.lastOffset < before.end));
    assert.ok(committedBefore.size >= 1);
    await c.kill(before.leader);
    // A new leader takes over and archives the rest.
    let after = { end: -1, leader: -1, hw: -1 };
    await until('the new leader archived everything sealed', async () => {
      const d = await admin.describeArchive([TOPIC]);
      const p = d.topics[0]!.partitions[0]!;
      after = { end: p.archiveEndOffset, leader: p.brokerId, hw: p.highWatermark };
      return p.leader && p.brokerId !== before.leader && p.lagSegments === 0 && p.archiveEndOffset > before.end && p.lastError === '';
    }, 60_000);
    assert.equal((await admin.describeArchive([TOPIC])).topics[0]!.partitions[0]!.archiveStartOffset, 0);
    // No re-upload: every manifest committed before the kill is still there, unchanged.
    const now = manifests(archiveDir);
    for (const [f, bytes] of committedBefore) assert.ok(now.get(f)?.equals(bytes), `${f} was rewritten or removed`);
    // No gap: the committed manifests chain from 0 to the new end.
    const committed: SegmentManifest[] = [...now].map(([, b]) => decodeManifest(b)).filter((m) => m.lastOffset < after.end).sort((a, b) => a.lastOffset - b.lastOffset);
    let covered = 0;
    for (const m of committed) {
      assert.ok(m.baseOffset <= covered, `gap before ${m.baseOffset}-${m.lastOffset} (covered to ${covered})`);
      covered = Math.max(covered, m.lastOffset + 1);
    }
    assert.equal(covered, after.end);
    assert.ok(committed.some((m) => m.uploadedBy === after.leader), 'the new leader uploaded segments');
    // Every message is still readable (from the replicas' local logs).
    const consumer = new Consumer({ bootstrap: c.bootstrap, maxWaitMs: 200 });
    await consumer.assign([{ topic: TOPIC, partition: 0, offset: 'earliest' }]);
    const seen: string[] = [];
    const deadline = Date.now() + 20_000;
    while (seen.length < values.length && Date.now() < deadline) for (const m of await consumer.poll()) seen.push(m.value!.toString());
    await consumer.close();
    assert.deepEqual(seen, values);
  } finally {
    await admin.close();
  }
});
