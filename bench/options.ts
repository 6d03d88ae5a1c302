/** Flags of `sluice bench`, parsed once into a typed BenchOptions that every mode reads. */
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, int, parseAcks, parseArgs, parseConfigs, positionals, str, strs, type FlagSpecs } from '../client/cli/args.ts';

export type BenchMode = 'produce' | 'consume' | 'e2e' | 'rebalance' | 'tags' | 'delayed';

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
  /** produce: true --idempotent, false --no-idempotent, undefined the producer's default for the acks. */
  idempotent: boolean | undefined;
  /** produce: each producer sends in transactions of txnMessages messages. */
  transactional: boolean;
  txnMessages: number;
  profile: 'throughput' | 'latency';
  /** Messages per second to send at; Infinity for unthrottled. */
  rateMsgsPerSec: number;
  producers: number;
  json: boolean;
  /** consume: count records from raw batches (pollBatches) instead of decoded messages. */
  raw: boolean;
  /** consume: read as members of this consumer group (null: one manually assigned Consumer). */
  group: string | null;
  /** consume --group: GroupConsumers in this process, each with its own connections. */
  consumers: number;
  /** rebalance: member processes started before the joining one. */
  members: number;
  /** rebalance, consume --group: the members' session timeout. */
  sessionTimeoutMs: number;
  /** consume: the consumers' isolation level (SPEC §6.7). */
  isolation: 'read_committed' | 'read_uncommitted';
  /** tags: distinct tags of the tagged topic (one per message, uniformly random). */
  tagCount: number;
  /** tags: drains per kind; medians reported. */
  runs: number;
  /** delayed: delivery times spread over this window. */
  windowMs: number;
  /** delayed: the window starts this long after scheduling starts; null = defaultStartAfterMs(messages). */
  startAfterMs: number | null;
  /** delayed: the broker process whose RSS is read (with --bootstrap). */
  brokerPid: number | null;
  /** delayed: start a broker process of its own on this data dir instead. */
  dataDir: string | null;
  /** delayed: how long normal messages are sent before scheduling, for the baseline rate. */
  baselineMs: number;
}

/** bench delayed defaults (issue 10: 10 M pending messages). */
export const DELAYED_MESSAGES_DEFAULT = 10_000_000;
export const DELAYED_WINDOW_MS_DEFAULT = 60_000;
export const DELAYED_BASELINE_MS_DEFAULT = 5_000;

/** rebalance: the producer's rate when --rate is not given (messages/s, all partitions). */
export const REBALANCE_RATE_DEFAULT = 2000;
export const SESSION_TIMEOUT_MS_DEFAULT = 10_000;
export const TXN_MESSAGES_DEFAULT = 1000;

export const benchHelp = `Usage: sluice bench produce|consume|e2e --topic T --messages N --size BYTES [options]
       sluice bench consume --topic T --messages N --size BYTES --group G --consumers K [options]
       sluice bench rebalance --topic T --partitions P --members M [--session-timeout-ms MS]
       sluice bench tags --topic T --messages N --size BYTES [--tag-count K] [--runs R]
       sluice bench delayed (--broker-pid PID | --data-dir DIR) [--messages N] [--window-ms MS] [options]
       sluice bench archive [--store local|s3] [--runs R] [--mb MIB] (see: sluice bench archive --help)
       sluice bench workload FILE ... | sluice bench plot RESULT.json... --out F.svg  (sluice bench workload --help)

Modes:
  produce   send N messages of BYTES random bytes; time until all are acknowledged
  consume   read N messages from the start of the topic (produces first if it has fewer)
  e2e       one paced producer and one consumer in this process; reports throughput and
            end-to-end latency (consume time - send time embedded in the value; the
            record timestamp when --size < 8) as p50/p99/p99.9/max
  consume --group G --consumers K
            K group members (one process, own connections each) of a fresh group G
            (G's committed offsets are deleted first) read the N messages from the
            start; timed from the first poll (the join) until their union holds N
  rebalance M member processes consume the topic while a producer sends --rate msgs/s
            (default ${REBALANCE_RATE_DEFAULT}, round-robin over the partitions); reports
            joinToStableMs: spawn of one more member until the group is stable with every
              member owning its fair share (floor or ceil of partitions/members)
            killToResumedMs: SIGKILL of a member until each partition it owned had a
              message consumed by another member (bounded below by the session timeout)
  delayed   schedule N delayed messages (default 10 M; --size default 100, --topic default
            bench-delayed, --partitions default 8) due uniformly over --window-ms (default
            ${DELAYED_WINDOW_MS_DEFAULT}) starting --start-after-ms after scheduling starts (default 5 s
            + N/10 ms, i.e. assuming 10 000 msgs/s: raise it if the run says the scheduling
            overran). Reports accepted msgs/s, pending entries and broker RSS with all N
            pending (and its peak), release lateness (receive time - sluice-deliver-at-ms)
            p50/p99/max and the early count (must be 0), and the rate of normal messages
            to <topic>.normal for --baseline-ms (default ${DELAYED_BASELINE_MS_DEFAULT}) before, and while
            the releases fire (unthrottled, or paced at --rate msgs/s). The broker:
            --broker-pid PID of the one at --bootstrap (same machine: its
            /proc/PID/status), or --data-dir DIR to start one of its own there

  tags      broker-side tag filtering: fresh topics T-tagged (each message one of
            --tag-count tags t0.., uniformly random) and T-plain (untagged), N
            messages each; reports produce msgs/s of both, and bytes and drain time
            of an unfiltered and a one-tag (t7) consumer of T-tagged and of an
            unfiltered consumer of T-plain (medians of --runs)

Options:
  --bootstrap H:P        broker address (default ${DEFAULT_BOOTSTRAP})
  --topic T              topic (created if missing, with --partitions)
  --messages N           number of messages
  --size BYTES           value size in bytes
  --partitions N         partitions when creating the topic (default 1)
  --config key=value     topic config when creating the topic (repeatable), e.g.
                         --config flush.before.ack=true for fsync-before-ack
  --acks 0|1|all         producer acks (default 1; all with --idempotent or --transactional)
  --idempotent           produce: idempotent producer (producer id, sequence numbers)
  --no-idempotent        produce: plain producer (compare with --acks all --idempotent)
  --transactional        produce: each producer sends in transactions (idempotent, acks all)
  --txn-messages N       produce --transactional: messages per transaction (default ${TXN_MESSAGES_DEFAULT})
  --profile throughput|latency
                         producer profile (default throughput)
  --rate MSGS_PER_S      pace the producer(s) at this total rate (default unthrottled;
                         rebalance ${REBALANCE_RATE_DEFAULT})
  --producers K          produce: K concurrent producers, one connection each, sharing N
  --raw                  consume: count records of raw batches instead of decoding messages
  --group G              consume: read as consumer group G (see above)
  --consumers K          consume --group: group members in this process (default 1)
  --isolation L          consume: read_uncommitted (default) or read_committed
  --members M            rebalance: member processes before the join (default 3)
  --session-timeout-ms MS
                         rebalance, consume --group: member session timeout (default
                         ${SESSION_TIMEOUT_MS_DEFAULT}, 1000-300000)
  --tag-count K          tags: distinct tags (default 100)
  --runs R               tags: drains of each kind, medians reported (default 1)
  --window-ms MS          delayed: the delivery times' window
  --start-after-ms MS    delayed: the window starts this long after scheduling starts
  --broker-pid PID       delayed: the broker's process id, for its RSS
  --data-dir DIR         delayed: start a broker process on DIR (instead of --bootstrap)
  --baseline-ms MS       delayed: normal-produce baseline duration
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
  idempotent: { type: 'boolean' },
  'no-idempotent': { type: 'boolean' },
  transactional: { type: 'boolean' },
  'txn-messages': { type: 'int', min: 1 },
  profile: { type: 'string' },
  rate: { type: 'int', min: 1 },
  producers: { type: 'int', min: 1 },
  raw: { type: 'boolean' },
  group: { type: 'string' },
  consumers: { type: 'int', min: 1 },
  members: { type: 'int', min: 1 },
  'session-timeout-ms': { type: 'int', min: 1000 },
  isolation: { type: 'string' },
  'tag-count': { type: 'int', min: 1 },
  runs: { type: 'int', min: 1 },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
  'window-ms': { type: 'int', min: 1 },
  'start-after-ms': { type: 'int', min: 0 },
  'broker-pid': { type: 'int', min: 1 },
  'data-dir': { type: 'string' },
  'baseline-ms': { type: 'int', min: 100 },
};

const DELAYED_ONLY = ['window-ms', 'start-after-ms', 'broker-pid', 'data-dir', 'baseline-ms'];

/** Parses argv (without the leading "bench"); returns null when --help was asked for. */
export function parseBenchOptions(argv: string[]): BenchOptions | null {
  const p = parseArgs(argv, flags);
  if (bool(p, 'help')) return null;
  const [mode] = positionals(p, ['MODE'], 'sluice bench produce|consume|e2e|rebalance|tags|delayed [options]');
  if (mode !== 'produce' && mode !== 'consume' && mode !== 'e2e' && mode !== 'rebalance' && mode !== 'tags' && mode !== 'delayed') {
    throw new UsageError(`unknown mode ${JSON.stringify(mode)}: produce, consume, e2e, rebalance, tags or delayed`);
  }
  if ((p.flags.has('tag-count') || p.flags.has('runs')) && mode !== 'tags') throw new UsageError('--tag-count and --runs apply to bench tags only');
  const rebalance = mode === 'rebalance';
  const delayed = mode === 'delayed';
  for (const f of DELAYED_ONLY) if (p.flags.has(f) && !delayed) throw new UsageError(`--${f} applies to bench delayed only`);
  if (delayed && p.flags.has('broker-pid') === p.flags.has('data-dir')) throw new UsageError('bench delayed needs one of --broker-pid PID (with --bootstrap) and --data-dir DIR');
  if (delayed && p.flags.has('data-dir') && p.flags.has('bootstrap')) throw new UsageError('--data-dir starts a broker of its own: drop --bootstrap');
  if (delayed && (p.flags.has('producers') || p.flags.has('transactional'))) throw new UsageError('--producers and --transactional do not apply to bench delayed');
  const topic = str(p, 'topic') ?? (delayed ? 'bench-delayed' : undefined);
  // rebalance runs until its measurements are done: --messages does not apply, --size has a default.
  if (rebalance && p.flags.has('messages')) throw new UsageError('--messages does not apply to bench rebalance');
  const messages = rebalance ? 0 : delayed ? int(p, 'messages', DELAYED_MESSAGES_DEFAULT) : int(p, 'messages');
  const sizeBytes = rebalance || delayed ? int(p, 'size', 100) : int(p, 'size');
  if (topic === undefined) throw new UsageError('--topic is required');
  if (messages === undefined) throw new UsageError('--messages is required');
  if (sizeBytes === undefined) throw new UsageError('--size is required');
  const group = str(p, 'group') ?? null;
  if (group !== null && mode !== 'consume') throw new UsageError('--group applies to bench consume only');
  if (group === '') throw new UsageError('--group must not be empty');
  if (p.flags.has('consumers') && group === null) throw new UsageError('--consumers needs --group');
  if (group !== null && bool(p, 'raw')) throw new UsageError('--raw applies to the manually assigned consumer only (without --group)');
  if (p.flags.has('members') && !rebalance) throw new UsageError('--members applies to bench rebalance only');
  if (p.flags.has('session-timeout-ms') && !rebalance && group === null) throw new UsageError('--session-timeout-ms applies to bench rebalance and consume --group only');
  const sessionTimeoutMs = int(p, 'session-timeout-ms', SESSION_TIMEOUT_MS_DEFAULT);
  if (sessionTimeoutMs > 300_000) throw new UsageError(`--session-timeout-ms must be <= 300000, not ${sessionTimeoutMs}`);
  const profile = str(p, 'profile', 'throughput');
  if (profile !== 'throughput' && profile !== 'latency') throw new UsageError(`--profile must be throughput or latency, not ${JSON.stringify(profile)}`);
  const producers = int(p, 'producers', 1);
  if (producers > 1 && mode !== 'produce') throw new UsageError('--producers applies to bench produce only');
  if (mode === 'produce' && producers > messages) throw new UsageError('--producers cannot exceed --messages');
  const transactional = bool(p, 'transactional');
  if (bool(p, 'idempotent') && bool(p, 'no-idempotent')) throw new UsageError('--idempotent and --no-idempotent exclude each other');
  const idempotent = bool(p, 'idempotent') || transactional ? true : bool(p, 'no-idempotent') ? false : undefined;
  if ((p.flags.has('idempotent') || p.flags.has('no-idempotent') || transactional) && mode !== 'produce' && !(mode === 'tags' && !transactional)) throw new UsageError('--idempotent, --no-idempotent and --transactional apply to bench produce only');
  if (transactional && bool(p, 'no-idempotent')) throw new UsageError('--transactional needs idempotence; drop --no-idempotent');
  if (p.flags.has('txn-messages') && !transactional) throw new UsageError('--txn-messages needs --transactional');
  const acks = parseAcks(str(p, 'acks', idempotent ? 'all' : '1'));
  if (idempotent && acks !== -1) throw new UsageError('--idempotent and --transactional need --acks all');
  const isolation = str(p, 'isolation', 'read_uncommitted');
  if (isolation !== 'read_committed' && isolation !== 'read_uncommitted') throw new UsageError(`--isolation must be read_committed or read_uncommitted, not ${JSON.stringify(isolation)}`);
  if (p.flags.has('isolation') && mode !== 'consume') throw new UsageError('--isolation applies to bench consume only');
  return {
    mode,
    idempotent,
    transactional,
    txnMessages: int(p, 'txn-messages', TXN_MESSAGES_DEFAULT),
    bootstrap: bootstrapOf(p),
    topic,
    messages,
    sizeBytes,
    partitions: int(p, 'partitions', delayed ? 8 : 1),
    configs: parseConfigs(strs(p, 'config')),
    acks,
    profile,
    rateMsgsPerSec: int(p, 'rate', rebalance ? REBALANCE_RATE_DEFAULT : Infinity),
    producers,
    json: bool(p, 'json'),
    raw: bool(p, 'raw'),
    group,
    consumers: int(p, 'consumers', 1),
    members: int(p, 'members', 3),
    sessionTimeoutMs,
    isolation,
    tagCount: int(p, 'tag-count', 100),
    runs: int(p, 'runs', 1),
    windowMs: int(p, 'window-ms', DELAYED_WINDOW_MS_DEFAULT),
    startAfterMs: int(p, 'start-after-ms') ?? null,
    brokerPid: int(p, 'broker-pid') ?? null,
    dataDir: str(p, 'data-dir') ?? null,
    baselineMs: int(p, 'baseline-ms', DELAYED_BASELINE_MS_DEFAULT),
  };
}
