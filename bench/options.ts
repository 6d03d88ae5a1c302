/** Flags of `sluice bench`, parsed once into a typed BenchOptions that every mode reads. */
import { DEFAULT_BOOTSTRAP, UsageError, bool, int, parseAcks, parseArgs, parseConfigs, positionals, str, strs, type FlagSpecs } from '../client/cli/args.ts';

export type BenchMode = 'produce' | 'consume' | 'e2e';

export interface BenchOptions {
  mode: BenchMode;
  bootstrap: string;
  topic: string;
  messages: number;
  sizeBytes: number;
  partitions: number;
  /** Topic config overrides used when the bench creates the topic. */
  configs: Record<string, string>;
  acks: 0 | 1 | -1;
  profile: 'throughput' | 'latency';
  /** Messages per second to send at; Infinity for unthrottled. */
  rateMsgsPerSec: number;
  producers: number;
  json: boolean;
  /** consume: count records from raw batches (pollBatches) instead of decoded messages. */
  raw: boolean;
}

export const benchHelp = `Usage: sluice bench produce|consume|e2e --topic T --messages N --size BYTES [options]

Modes:
  produce   send N messages of BYTES random bytes; time until all are acknowledged
  consume   read N messages from the start of the topic (produces first if it has fewer)
  e2e       one paced producer and one consumer in this process; reports throughput and
            end-to-end latency (consume time - send time embedded in the value; the
            record timestamp when --size < 8) as p50/p99/p99.9/max

Options:
  --bootstrap H:P        broker address (default ${DEFAULT_BOOTSTRAP})
  --topic T              topic (created if missing, with --partitions)
  --messages N           number of messages
  --size BYTES           value size in bytes
  --partitions N         partitions when creating the topic (default 1)
  --config key=value     topic config when creating the topic (repeatable), e.g.
                         --config flush.before.ack=true for fsync-before-ack
  --acks 0|1|all         producer acks (default 1)
  --profile throughput|latency
                         producer profile (default throughput)
  --rate MSGS_PER_S      pace the producer(s) at this total rate (default unthrottled)
  --producers K          produce: K concurrent producers, one connection each, sharing N
  --raw                  consume: count records of raw batches instead of decoding messages
  --json                 last stdout line is one JSON object with the results
  --help                 show this help

A progress line goes to stderr about once a second. MB/s is 2^20 bytes of values per second.
`;

const flags: FlagSpecs = {
  bootstrap: { type: 'string' },
  topic: { type: 'string' },
  messages: { type: 'int', min: 1 },
  size: { type: 'int', min: 0 },
  partitions: { type: 'int', min: 1 },
  config: { type: 'string', multiple: true },
  acks: { type: 'string' },
  profile: { type: 'string' },
  rate: { type: 'int', min: 1 },
  producers: { type: 'int', min: 1 },
  raw: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
};

/** Parses argv (without the leading "bench"); returns null when --help was asked for. */
export function parseBenchOptions(argv: string[]): BenchOptions | null {
  const p = parseArgs(argv, flags);
  if (bool(p, 'help')) return null;
  const [mode] = positionals(p, ['MODE'], 'sluice bench produce|consume|e2e [options]');
  if (mode !== 'produce' && mode !== 'consume' && mode !== 'e2e') throw new UsageError(`unknown mode ${JSON.stringify(mode)}: produce, consume or e2e`);
  const topic = str(p, 'topic');
  const messages = int(p, 'messages');
  const sizeBytes = int(p, 'size');
  if (topic === undefined) throw new UsageError('--topic is required');
  if (messages === undefined) throw new UsageError('--messages is required');
  if (sizeBytes === undefined) throw new UsageError('--size is required');
  const profile = str(p, 'profile', 'throughput');
  if (profile !== 'throughput' && profile !== 'latency') throw new UsageError(`--profile must be throughput or latency, not ${JSON.stringify(profile)}`);
  const producers = int(p, 'producers', 1);
  if (producers > 1 && mode !== 'produce') throw new UsageError('--producers applies to bench produce only');
  if (producers > messages) throw new UsageError('--producers cannot exceed --messages');
  return {
    mode,
    bootstrap: str(p, 'bootstrap', DEFAULT_BOOTSTRAP),
    topic,
    messages,
    sizeBytes,
    partitions: int(p, 'partitions', 1),
    configs: parseConfigs(strs(p, 'config')),
    acks: parseAcks(str(p, 'acks', '1')),
    profile,
    rateMsgsPerSec: int(p, 'rate', Infinity),
    producers,
    json: bool(p, 'json'),
    raw: bool(p, 'raw'),
  };
}
