/**
 * At-least-once across broker faults during a consumer group's assignment (etcd + 3 broker
 * processes on 127.0.0.1): a member must never commit past a record that no member was handed.
 *
 * The invariant checked, for every partition, all the time (sampled) and at the end:
 *   committed offset <= delivered prefix
 * where the delivered prefix is the first offset not yet handed out by poll() to any member
 * (every record below it was delivered at least once). A member may commit an offset only
 * after poll() returned the records below it, and the test records a poll's records before
 * the member can poll (or commit) again; the checker reads the commits first and the
 * prefixes after, so a correct member is never reported.
 *
 * Faults: SIGSTOP of a partition leader (not the group coordinator) while a member looks up
 * the start offsets of freshly assigned partitions (none committed, autoOffsetReset
 * 'earliest'), SIGKILL of a leader while the group takes on a new topic and a second member,
 * and SIGSTOP again while a third topic arrives, a third member joins and the first leaves.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { Admin } from '../../client/admin.ts';
import type { Message } from '../../client/consumer.ts';
import { GroupConsumer } from '../../client/group/consumer.ts';
import { Producer } from '../../client/producer.ts';
import { createTopic, sleep, waitFor, withCluster, withTimeout, type Harness } from './harness.ts';

/** What poll() handed out, per partition, across all members of the group. */
class DeliveryLedger {
  private readonly offsets = new Map<string, Set<number>>();
  private readonly prefixes = new Map<string, number>();

  record(m: Message): void {
    const k = `${m.topic}/${m.partition}`;
    let seen = this.offsets.get(k);
    if (!seen) this.offsets.set(k, (seen = new Set()));
    seen.add(m.offset);
    let prefix = this.prefixes.get(k) ?? 0;
    while (seen.has(prefix)) prefix++;
    this.prefixes.set(k, prefix);
  }

  /** The first offset of the partition not yet delivered to anyone. */
  prefix(topic: string, partition: number): number {
    return this.prefixes.get(`${topic}/${partition}`) ?? 0;
  }

  count(): number {
    let n = 0;
    for (const s of this.offsets.values()) n += s.size;
    return n;
  }
}

/** Reads the group's committed offsets and records every partition whose commit is ahead of delivery. */
async function checkCommits(admin: Admin, group: string, ledger: DeliveryLedger, violations: string[]): Promise<void> {
  const committed = await admin.fetchOffsets(group);
  // Prefixes only grow: read after the commits, so a commit made after this read cannot be judged against an old prefix.
  for (const c of committed) {
    const delivered = ledger.prefix(c.topic, c.partition);
    if (c.offset > delivered) violations.push(`${c.topic}/${c.partition}: committed ${c.offset} > delivered prefix ${delivered}`);
  }
}

/** A member that polls until stopped, recording deliveries and poll() errors. */
function runMember(c: GroupConsumer, name: string, ledger: DeliveryLedger, errors: string[]): { stop: () => Promise<void> } {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        for (const m of await c.poll(200)) ledger.record(m);
      } catch (e) {
        errors.push(`${name}: ${(e as Error).message}`);
        await sleep(100);
      }
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

function member(h: Harness, group: string, sub: { topics: string[] } | { topicPattern: string }, name: string): GroupConsumer {
  return new GroupConsumer({
    bootstrap: h.allBootstrap,
    groupId: group,
    ...sub,
    autoOffsetReset: 'earliest',
    autoCommitIntervalMs: 200,
    sessionTimeoutMs: 10_000,
    maxWaitMs: 200,
    retryBackoffMs: 100,
    requestTimeoutMs: 8000,
    clientId: name,
  });
}

async function produceEach(producer: Producer, topic: string, partitions: number, perPartition: number): Promise<void> {
  const sends: Array<Promise<unknown>> = [];
  for (let p = 0; p < partitions; p++) for (let i = 0; i < perPartition; i++) sends.push(producer.send({ topic, partition: p, value: `${topic}-${p}-${i}` }));
  await withTimeout(Promise.all(sends), 30_000, `producing to ${topic}`);
}

/** A broker other than the coordinator that leads at least one of the topic's partitions, while another broker leads one too. */
function pickLeaderToFault(leaders: number[], coordinator: number, exclude: number[] = []): number {
  const candidates = [...new Set(leaders)].filter((b) => b !== coordinator && !exclude.includes(b));
  const victim = candidates.find((b) => leaders.some((l) => l !== b));
  assert.ok(victim !== undefined, `no broker to fault: leaders [${leaders}], coordinator ${coordinator}`);
  return victim;
}

function pause(h: Harness, id: number): () => void {
  const proc = h.cluster.brokers.get(id)!.proc;
  proc.kill('SIGSTOP');
  let resumed = false;
  return () => {
    if (resumed) return;
    resumed = true;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGCONT');
  };
}

test('partition start offsets resolving at different times (leader paused during assignment): commits never pass delivery', { timeout: 120_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const TOPIC = 'gaf-lookup';
    const GROUP = 'g-gaf-lookup';
    const PARTITIONS = 3;
    const PER_PARTITION = 5;
    const admin = h.admin();
    const leaders = (await createTopic(admin, TOPIC, PARTITIONS, 3)).map((p) => p.leader);
    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', requestTimeoutMs: 10_000 });
    const ledger = new DeliveryLedger();
    const errors: string[] = [];
    const violations: string[] = [];
    let resume = (): void => {};
    let c: GroupConsumer | null = null;
    let run: { stop: () => Promise<void> } | null = null;
    try {
      await produceEach(producer, TOPIC, PARTITIONS, PER_PARTITION);
      const coordinator = (await admin.findCoordinator(GROUP)).nodeId;
      await admin.fetchOffsets(GROUP); // warms the admin's coordinator connection before a broker freezes
      const victim = pickLeaderToFault(leaders, coordinator);
      t.diagnostic(`leaders [${leaders}], coordinator ${coordinator}, pausing broker ${victim} for 3 s while the member is assigned`);

      resume = pause(h, victim);
      c = member(h, GROUP, { topics: [TOPIC] }, 'lookup-member');
      run = runMember(c, 'lookup-member', ledger, errors);
      const pausedAt = Date.now();
      while (Date.now() - pausedAt < 3000) {
        await checkCommits(admin, GROUP, ledger, violations);
        await sleep(200);
      }
      resume();
      await waitFor(`all ${PARTITIONS * PER_PARTITION} records delivered`, async () => {
        await checkCommits(admin, GROUP, ledger, violations);
        return violations.length > 0 || ledger.count() === PARTITIONS * PER_PARTITION;
      }, 40_000, 200).catch(async (e: Error) => {
        const committed = await admin.fetchOffsets(GROUP).catch(() => []);
        throw new Error(`${e.message}; delivered prefixes [${Array.from({ length: PARTITIONS }, (_, p) => ledger.prefix(TOPIC, p))}], committed [${committed.map((x) => `${x.partition}:${x.offset}`)}], poll errors ${errors.slice(-3)}`);
      });
      assert.deepEqual(violations, [], 'commits never pass delivery');
      await c.commit();
      await checkCommits(admin, GROUP, ledger, violations);
      assert.deepEqual(violations, [], 'commits never pass delivery');
      const committed = await admin.fetchOffsets(GROUP);
      assert.deepEqual(committed.map((x) => x.offset), Array(PARTITIONS).fill(PER_PARTITION), 'everything delivered is committed after commit()');
    } finally {
      resume();
      await run?.stop();
      await withTimeout(Promise.all([producer.close(), c?.close()]), 30_000, 'closing clients').catch(() => {});
    }
  });
});

test('pauses and kills of partition leaders during a group\'s assignments and rebalances: commits never pass delivery, nothing is lost', { timeout: 240_000 }, async (t) => {
  await withCluster(t, { brokers: 3 }, async (h) => {
    const GROUP = 'g-gaf-faults';
    const PARTITIONS = 4;
    const PER_PARTITION = 10;
    const admin = h.admin();
    const producer = new Producer({ bootstrap: h.allBootstrap, acks: 'all', retries: 60, retryBackoffMs: 50, retryBackoffMaxMs: 250, requestTimeoutMs: 10_000 });
    const ledger = new DeliveryLedger();
    const errors: string[] = [];
    const violations: string[] = [];
    const members: GroupConsumer[] = [];
    const runs: Array<{ stop: () => Promise<void> }> = [];
    const topics: string[] = [];
    let resume = (): void => {};
    let checking = true;
    const checker = (async () => {
      while (checking) {
        await checkCommits(admin, GROUP, ledger, violations).catch(() => {});
        await sleep(250);
      }
    })();
    const closed = new Set<GroupConsumer>();
    const start = (name: string): void => {
      const c = member(h, GROUP, { topics: [...topics] }, name);
      members.push(c);
      runs.push(runMember(c, name, ledger, errors));
    };
    /** A new topic with records; the live members subscribe to it (a rebalance: its partitions have no committed offset). */
    const newTopic = async (name: string): Promise<number[]> => {
      const leaders = (await createTopic(admin, name, PARTITIONS, 3, { 'min.insync.replicas': 1 })).map((p) => p.leader);
      topics.push(name);
      await produceEach(producer, name, PARTITIONS, PER_PARTITION);
      return leaders;
    };
    const subscribeAll = (): void => {
      for (const c of members) if (!closed.has(c)) c.subscribe([...topics]);
    };
    /** waitFor, failing with the group's state: deliveries, assignments, commits, poll errors. */
    const phase = async (what: string, cond: () => boolean, timeoutMs: number): Promise<void> => {
      // Ends early on a violation (the checker runs in the background), reported below.
      await waitFor(what, () => violations.length > 0 || cond(), timeoutMs).catch(async (e: Error) => {
        const committed = await admin.fetchOffsets(GROUP).catch(() => []);
        const prefixes = topics.map((topic) => `${topic} [${Array.from({ length: PARTITIONS }, (_, p) => ledger.prefix(topic, p))}]`);
        throw new Error(`${e.message}; delivered prefixes ${prefixes.join(', ')}; committed [${committed.map((x) => `${x.topic}/${x.partition}:${x.offset}`)}]; assignments ${members.map((c, i) => `member-${i + 1}: [${c.assignment().map((x) => `${x.topic}/${x.partition}`)}] epoch ${c.memberEpoch}`).join('; ')}; poll errors ${errors.slice(-3)}`);
      });
      assert.deepEqual(violations, [], `${what}: no partition committed past its delivered prefix`);
    };
    try {
      const coordinator = (await admin.findCoordinator(GROUP)).nodeId;
      await admin.fetchOffsets(GROUP);

      // ---- 1: the first member is assigned while one partition leader is frozen ----
      const leadersA = await newTopic('gaf-f-a');
      const paused = pickLeaderToFault(leadersA, coordinator);
      t.diagnostic(`phase 1: leaders of gaf-f-a [${leadersA}], coordinator ${coordinator}; SIGSTOP broker ${paused} for 3 s while member 1 joins`);
      resume = pause(h, paused);
      start('member-1');
      await sleep(3000);
      resume();
      await phase('phase 1 delivered', () => ledger.count() === PARTITIONS * PER_PARTITION, 40_000);

      // ---- 2: a new topic and a second member (a rebalance) while a partition leader is killed ----
      const leadersB = await newTopic('gaf-f-b');
      const killed = pickLeaderToFault(leadersB, coordinator);
      t.diagnostic(`phase 2: leaders of gaf-f-b [${leadersB}]; member 1 subscribes to it and member 2 joins, SIGKILL broker ${killed}`);
      subscribeAll();
      start('member-2');
      await sleep(300);
      await h.kill(killed);
      await phase('phase 2 delivered', () => ledger.count() === 2 * PARTITIONS * PER_PARTITION, 60_000);
      await phase('two members sharing the partitions', () => members[1]!.assignment().length > 0 && members[0]!.assignment().length > 0, 30_000);

      // ---- 3: broker back; a third topic while another leader is frozen and member 1 leaves ----
      await h.restart(killed);
      const leadersC = await newTopic('gaf-f-c');
      const frozen = pickLeaderToFault(leadersC, coordinator);
      t.diagnostic(`phase 3: broker ${killed} restarted; leaders of gaf-f-c [${leadersC}]; SIGSTOP broker ${frozen} for 3 s while member 1 closes and member 3 joins`);
      resume = pause(h, frozen);
      subscribeAll();
      start('member-3');
      await runs[0]!.stop();
      closed.add(members[0]!);
      const closing = members[0]!.close();
      await sleep(3000);
      resume();
      await withTimeout(closing, 30_000, 'member 1 closing');
      await phase('phase 3 delivered', () => ledger.count() === 3 * PARTITIONS * PER_PARTITION, 60_000);

      // ---- end: the live members commit what they delivered ----
      await waitFor('live members commit', async () => {
        for (const c of members) if (!closed.has(c)) await c.commit();
        const committed = await admin.fetchOffsets(GROUP);
        return topics.every((topic) => Array.from({ length: PARTITIONS }, (_, p) => p).every((p) => committed.find((x) => x.topic === topic && x.partition === p)?.offset === PER_PARTITION));
      }, 30_000, 300);
      await checkCommits(admin, GROUP, ledger, violations);
      t.diagnostic(`${ledger.count()} distinct records delivered; ${errors.length} poll errors${errors.length ? ` (e.g. ${[...new Set(errors.map((e) => e.replace(/^member-\d: /, '')))].slice(0, 2).join(' | ')})` : ''}`);
      assert.deepEqual(violations, [], 'no partition was ever committed past its delivered prefix');
    } finally {
      resume();
      checking = false;
      await checker;
      for (const r of runs) await r.stop();
      await withTimeout(Promise.all([producer.close(), ...members.map((c) => c.close())]), 30_000, 'closing clients').catch(() => {});
    }
  });
});
