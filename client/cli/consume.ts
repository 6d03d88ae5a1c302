/**
 * `sluice consume TOPIC`: prints messages, one per line. Output is written per poll() as one
 * chunk and honours stdout backpressure, so `| head` and slow pipes work; a closed pipe
 * (EPIPE) or SIGINT/SIGTERM ends the command cleanly with exit code 0.
 */
import { Cluster } from '../cluster.ts';
import { Consumer, type Message, type OffsetSpec } from '../consumer.ts';
import { DEFAULT_BOOTSTRAP, UsageError, bool, int, parseArgs, positionals, str, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const consumeHelp = `Usage: sluice consume TOPIC [options]

Prints each message of TOPIC on its own line: the value as UTF-8 (null prints as "null").
Without --partition every partition is read. Starts at the end of each partition (new
messages only) unless --from-beginning or --offset says otherwise. Runs until
--max-messages, --idle-timeout-ms, Ctrl-C or a closed output pipe.

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --from-beginning       start at the earliest retained message
  --partition N          read only partition N
  --offset O             with --partition: start at offset O (a number, earliest or latest)
  --max-messages N       exit after N messages
  --idle-timeout-ms T    exit when no message arrived for T ms
  --print-key            print key<TAB>value
  --print-offset         prefix each line with partition:offset<TAB>
  --help                 show this help
`;

const flags: FlagSpecs = {
  bootstrap: { type: 'string' },
  'from-beginning': { type: 'boolean' },
  partition: { type: 'int', min: 0 },
  offset: { type: 'string' },
  'max-messages': { type: 'int', min: 1 },
  'idle-timeout-ms': { type: 'int', min: 1 },
  'print-key': { type: 'boolean' },
  'print-offset': { type: 'boolean' },
  help: { type: 'boolean' },
};

export async function consumeCommand(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, flags);
  if (p.flags.has('help')) {
    io.out(consumeHelp);
    return 0;
  }
  const [topic] = positionals(p, ['TOPIC'], 'sluice consume TOPIC [options]');
  const bootstrap = str(p, 'bootstrap', DEFAULT_BOOTSTRAP);
  const fromBeginning = bool(p, 'from-beginning');
  const partition = int(p, 'partition');
  const offsetRaw = str(p, 'offset');
  const maxMessages = int(p, 'max-messages', Infinity);
  const idleTimeoutMs = int(p, 'idle-timeout-ms');
  const printKey = bool(p, 'print-key');
  const printOffset = bool(p, 'print-offset');
  if (offsetRaw !== undefined && partition === undefined) throw new UsageError('--offset needs --partition');
  if (offsetRaw !== undefined && fromBeginning) throw new UsageError('--offset and --from-beginning exclude each other');
  const start: OffsetSpec = offsetRaw !== undefined ? parseOffset(offsetRaw) : fromBeginning ? 'earliest' : 'latest';

  const partitions = partition !== undefined ? [partition] : await partitionsOf(bootstrap, topic!);
  const consumer = new Consumer({ bootstrap, clientId: 'sluice-cli-consumer', autoOffsetReset: fromBeginning ? 'earliest' : 'latest' });
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    void consumer.close();
  };
  const out = io.stdout;
  const onOutError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') io.err(`sluice consume: stdout: ${e.message}\n`);
    stop();
  };
  out.on('error', onOutError);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let count = 0;
  try {
    await consumer.assign(partitions.map((partition) => ({ topic: topic!, partition, offset: start })));
    let lastMessageAt = Date.now();
    while (!stopped && count < maxMessages) {
      let wait = 500;
      if (idleTimeoutMs !== undefined) {
        const left = idleTimeoutMs - (Date.now() - lastMessageAt);
        if (left <= 0) break;
        wait = Math.min(wait, left);
      }
      const batch = await consumer.poll(wait);
      if (stopped) break;
      if (batch.length === 0) continue;
      lastMessageAt = Date.now();
      const take = Math.min(batch.length, maxMessages - count);
      count += take;
      const text = format(batch, take, printKey, printOffset);
      if (!out.write(text)) await drainOrStop(out, () => stopped);
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await consumer.close();
    // Leave the listener: a write still queued may fail with EPIPE after we return.
  }
  io.err(`Processed a total of ${count} messages\n`);
  return 0;
}

function format(batch: Message[], n: number, printKey: boolean, printOffset: boolean): string {
  const lines: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const m = batch[i]!;
    let line = m.value === null ? 'null' : m.value.toString('utf8');
    if (printKey) line = `${m.key === null ? 'null' : m.key.toString('utf8')}\t${line}`;
    if (printOffset) line = `${m.partition}:${m.offset}\t${line}`;
    lines[i] = line;
  }
  return lines.join('\n') + '\n';
}

function parseOffset(raw: string): OffsetSpec {
  if (raw === 'earliest' || raw === 'latest') return raw;
  if (/^\d+$/.test(raw) && Number.isSafeInteger(Number(raw))) return Number(raw);
  throw new UsageError(`--offset must be a non-negative integer, earliest or latest, not ${JSON.stringify(raw)}`);
}

async function partitionsOf(bootstrap: string, topic: string): Promise<number[]> {
  const cluster = new Cluster({ bootstrap, clientId: 'sluice-cli-consumer' });
  try {
    const md = await cluster.topic(topic);
    return md.partitions.map((p) => p.partition).sort((a, b) => a - b);
  } finally {
    cluster.close();
  }
}

function drainOrStop(out: NodeJS.WritableStream, stopped: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (stopped()) done();
    }, 100);
    const done = (): void => {
      clearInterval(timer);
      out.off('drain', done);
      resolve();
    };
    out.once('drain', done);
  });
}
