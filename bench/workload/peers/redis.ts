/**
 * The workload driver's adapter for Redis Streams (ioredis): partition p of topic T is the
 * stream "T-p"; a producer pipelines one XADD per message (field "v") and waits for the whole
 * pipeline; a consumer XREADs its streams (BLOCK, COUNT) from the last entry present when it
 * became ready. Redis has no partitioner: keyed messages go to partitionOfKey, the others round robin.
 * Durability is the server's (the tests and README start it with AOF, appendfsync everysec).
 */
import { Redis } from 'ioredis';
import { partitionOfKey, type ConsumerConfig, type Peer, type PeerConsumer, type ProducerConfig } from './peer.ts';

const XREAD_COUNT_MAX = 1000;
const XREAD_BLOCK_MS = 100;

/** A client that does not reconnect (a lost server fails the run) and keeps its last socket error for messages. */
function connect(address: string): Redis {
  const [host, port] = splitAddress(address);
  const r = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true, retryStrategy: () => null });
  // Without a listener ioredis prints "Unhandled error event"; the error reaches the caller through the failed command.
  r.on('error', (e: Error) => lastErrors.set(r, e));
  return r;
}
const lastErrors = new WeakMap<Redis, Error>();

/** Names the server in a failure, with the socket error behind ioredis's "Connection is closed". */
async function explain<T>(r: Redis, address: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const cause = lastErrors.get(r);
    throw new Error(`redis at ${address}: ${(e as Error).message}${cause && cause !== e ? ` (${cause.message})` : ''}`);
  }
}

export function splitAddress(address: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) throw new Error(`peer address must be HOST:PORT, got ${JSON.stringify(address)}`);
  return [m[1]!, Number(m[2])];
}

const streamOf = (topic: string, p: number): string => `${topic}-${p}`;

export const redisPeer: Peer = {
  admin(address) {
    const r = connect(address);
    return {
      // Streams come into being with their first XADD; a fresh topic name needs nothing, an old one is emptied.
      async createTopic(topic, partitions) {
        if (r.status === 'wait') await explain(r, address, r.connect());
        for (let p = 0; p < partitions; p++) await explain(r, address, r.del(streamOf(topic, p)));
      },
      close: async () => void r.disconnect(),
    };
  },

  producer(cfg: ProducerConfig) {
    const r = connect(cfg.address);
    let next = 0;
    let connected: Promise<void> | null = null;
    return {
      async send(messages) {
        connected ??= explain(r, cfg.address, r.connect());
        await connected;
        const pipe = r.pipeline();
        for (const m of messages) {
          const p = m.key !== undefined ? partitionOfKey(m.key, cfg.partitions) : (next = (next + 1) % cfg.partitions);
          pipe.xadd(streamOf(cfg.topic, p), '*', 'v', m.value);
        }
        const results = await explain(r, cfg.address, pipe.exec());
        for (const [err] of results ?? []) if (err) throw err;
      },
      close: async () => void r.disconnect(),
    };
  },

  consumer(cfg: ConsumerConfig): PeerConsumer {
    if (cfg.group !== null) throw new Error('consumerGroups is supported by the sluice driver only');
    const r = connect(cfg.address);
    const keys = cfg.partitions.map((p) => streamOf(cfg.topic, p));
    const ids = keys.map(() => '0-0');
    let closed = false;
    return {
      async ready() {
        await explain(r, cfg.address, r.connect());
        for (let i = 0; i < keys.length; i++) {
          const last = (await explain(r, cfg.address, r.xrevrange(keys[i]!, '+', '-', 'COUNT', 1))) as Array<[string, string[]]>;
          if (last.length > 0) ids[i] = last[0]![0];
        }
      },
      owned: () => keys.length,
      async run(onValues) {
        if (keys.length === 0) return;
        const index = new Map(keys.map((k, i) => [k, i]));
        while (!closed) {
          const res = (await explain(r, cfg.address, r.xreadBuffer('COUNT', XREAD_COUNT_MAX, 'BLOCK', XREAD_BLOCK_MS, 'STREAMS', ...keys, ...ids)).catch((e: Error) => {
            if (closed) return null;
            throw e;
          })) as unknown as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
          if (res === null) continue;
          for (const [key, entries] of res) {
            const values: Buffer[] = new Array(entries.length);
            for (let j = 0; j < entries.length; j++) values[j] = entries[j]![1][1]!;
            if (entries.length > 0) ids[index.get(key.toString())!] = entries[entries.length - 1]![0].toString();
            onValues(values);
          }
        }
      },
      close: async () => {
        closed = true;
        r.disconnect();
      },
    };
  },
};
