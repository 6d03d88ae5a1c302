/**
 * The workload driver's adapter for NATS JetStream (client `nats`): topic T is a file-stored
 * stream "T" with subjects "T.<partition>"; a producer publishes each message and waits for
 * every PubAck of the call; a consumer reads each of its partitions through an ordered
 * consumer starting at new messages. NATS has no partitioner: keyed messages go to
 * partitionOfKey, the others round robin. acks=0 still waits for PubAcks (JetStream always acks).
 */
import { connect, DeliverPolicy, StorageType, type ConsumerMessages, type NatsConnection } from 'nats';
import { partitionOfKey, type ConsumerConfig, type Peer, type PeerConsumer, type ProducerConfig } from './peer.ts';

const CONSUME_MESSAGES_MAX = 1000;

/** Connects, naming the server in a failure (the client's own message is a bare code such as CONNECTION_REFUSED). */
async function connectTo(address: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: address });
  } catch (e) {
    throw new Error(`nats at ${address}: ${(e as Error).message} (is nats-server -js running there?)`);
  }
}
/** Values handed to onValues together (the consume iterator yields one message at a time). */
const DELIVER_BATCH_MAX = 256;

export const natsPeer: Peer = {
  admin(address) {
    let nc: Promise<NatsConnection> | null = null;
    return {
      async createTopic(topic, _partitions, replicationFactor) {
        nc ??= connectTo(address);
        const jsm = await (await nc).jetstreamManager();
        await jsm.streams.add({ name: topic, subjects: [`${topic}.*`], storage: StorageType.File, num_replicas: Math.max(1, replicationFactor) });
      },
      close: async () => {
        if (nc) await (await nc).close();
      },
    };
  },

  producer(cfg: ProducerConfig) {
    let nc: Promise<NatsConnection> | null = null;
    let next = 0;
    return {
      async send(messages) {
        nc ??= connectTo(cfg.address);
        const js = (await nc).jetstream();
        const acks: Array<Promise<unknown>> = new Array(messages.length);
        for (let i = 0; i < messages.length; i++) {
          const m = messages[i]!;
          const p = m.key !== undefined ? partitionOfKey(m.key, cfg.partitions) : (next = (next + 1) % cfg.partitions);
          acks[i] = js.publish(`${cfg.topic}.${p}`, m.value);
        }
        await Promise.all(acks);
      },
      close: async () => {
        if (nc) await (await nc).close();
      },
    };
  },

  consumer(cfg: ConsumerConfig): PeerConsumer {
    if (cfg.group !== null) throw new Error('consumerGroups is supported by the sluice driver only');
    let nc: NatsConnection | null = null;
    const iters: ConsumerMessages[] = [];
    return {
      async ready() {
        nc = await connectTo(cfg.address);
        const js = nc.jetstream();
        for (const p of cfg.partitions) {
          const c = await js.consumers.get(cfg.topic, { filterSubjects: `${cfg.topic}.${p}`, deliver_policy: DeliverPolicy.New });
          iters.push(await c.consume({ max_messages: CONSUME_MESSAGES_MAX }));
        }
      },
      owned: () => cfg.partitions.length,
      async run(onValues) {
        await Promise.all(
          iters.map(async (it) => {
            let batch: Uint8Array[] = [];
            let flush: NodeJS.Immediate | null = null;
            for await (const m of it) {
              batch.push(m.data);
              if (batch.length >= DELIVER_BATCH_MAX) {
                onValues(batch);
                batch = [];
              } else flush ??= setImmediate(() => {
                flush = null;
                if (batch.length > 0) onValues(batch);
                batch = [];
              });
            }
            if (flush) clearImmediate(flush);
            if (batch.length > 0) onValues(batch);
          }),
        );
      },
      close: async () => {
        for (const it of iters) it.stop();
        if (nc) await nc.close();
      },
    };
  },
};
