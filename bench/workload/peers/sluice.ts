/** The workload driver's adapter for Sluice itself (client/ Producer, Consumer, GroupConsumer). */
import { Admin } from '../../../client/admin.ts';
import { Consumer } from '../../../client/consumer.ts';
import { GroupConsumer } from '../../../client/group/consumer.ts';
import { Producer } from '../../../client/producer.ts';
import { ErrorCode, SluiceError } from '../../../protocol/errors.ts';
import type { ConsumerConfig, Peer, PeerConsumer, ProducerConfig } from './peer.ts';

/** How long a poll waits for data: short enough to notice close() promptly. */
const POLL_WAIT_MS = 100;
const TOPIC_LEADERS_ATTEMPTS_MAX = 100;
const TOPIC_LEADERS_RETRY_MS = 100;

export const sluicePeer: Peer = {
  admin(address) {
    const admin = new Admin({ bootstrap: address, clientId: 'sluice-workload' });
    return {
      async createTopic(topic, partitions, replicationFactor, configs) {
        try {
          await admin.createTopics([{ topic, partitions, replicationFactor, configs }]);
        } catch (e) {
          if (!(e instanceof SluiceError && e.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw e;
        }
        // On a cluster the leaders appear in metadata shortly after creation.
        for (let attempt = 0; ; attempt++) {
          const md = await admin.cluster.topic(topic, true).catch(() => null);
          if (md && md.partitions.length === partitions && md.partitions.every((p) => p.leader >= 0)) return;
          if (attempt >= TOPIC_LEADERS_ATTEMPTS_MAX) throw new Error(`topic ${topic}: partitions without a leader after ${(TOPIC_LEADERS_ATTEMPTS_MAX * TOPIC_LEADERS_RETRY_MS) / 1000} s`);
          await new Promise((r) => setTimeout(r, TOPIC_LEADERS_RETRY_MS));
        }
      },
      close: () => admin.close(),
    };
  },

  producer(cfg: ProducerConfig) {
    const producer = new Producer({ bootstrap: cfg.address, clientId: cfg.clientId, acks: cfg.acks, profile: cfg.paced ? 'latency' : 'throughput' });
    return {
      async send(messages) {
        await producer.sendBatch(messages.map((m) => ({ topic: cfg.topic, value: m.value, key: m.key })));
      },
      close: () => producer.close(),
    };
  },

  consumer(cfg: ConsumerConfig): PeerConsumer {
    let closed = false;
    if (cfg.group !== null) {
      let owned = 0;
      const gc = new GroupConsumer({
        bootstrap: cfg.address,
        clientId: cfg.clientId,
        groupId: cfg.group,
        topics: [cfg.topic],
        autoOffsetReset: 'latest',
        maxWaitMs: POLL_WAIT_MS,
        onAssignmentChange: (e) => (owned = e.owned.length),
      });
      return {
        // Joining happens in poll(); the driver waits until the group's members cover the topic.
        ready: async () => {},
        owned: () => owned,
        async run(onValues) {
          while (!closed) {
            const msgs = await gc.poll();
            if (msgs.length > 0) onValues(msgs.map((m) => m.value!));
          }
        },
        close: async () => {
          closed = true;
          await gc.close();
        },
      };
    }
    const consumer = new Consumer({ bootstrap: cfg.address, clientId: cfg.clientId, autoOffsetReset: 'latest', maxWaitMs: POLL_WAIT_MS });
    return {
      ready: () => consumer.assign(cfg.partitions.map((partition) => ({ topic: cfg.topic, partition, offset: 'latest' as const }))),
      owned: () => cfg.partitions.length,
      async run(onValues) {
        while (!closed) {
          const msgs = await consumer.poll();
          if (msgs.length > 0) onValues(msgs.map((m) => m.value!));
        }
      },
      close: async () => {
        closed = true;
        await consumer.close();
      },
    };
  },
};
