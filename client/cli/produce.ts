/**
 * `sluice produce TOPIC`: one message per stdin line, flushed at EOF. Sends are pipelined
 * (up to IN_FLIGHT_MAX unacknowledged) so a large file streams at producer speed; each failed
 * send is reported on stderr with its line number and makes the exit code 1.
 */
import readline from 'node:readline';
import { Producer } from '../producer.ts';
import { DEFAULT_BOOTSTRAP, UsageError, int, parseAcks, parseArgs, positionals, str, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const produceHelp = `Usage: sluice produce TOPIC [options]

Reads stdin and sends one message per line (without the line ending) to TOPIC;
flushes and exits at end of input. Errors go to stderr; the exit code is 1 if any
message failed.

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --acks 0|1|all         acknowledgement level (default all)
  --key-separator SEP    split each line at the first SEP into key and value
                         (a line without SEP is an error and is skipped)
  --partition N          send every message to partition N (default: by key, or
                         sticky partitioning for keyless messages)
  --help                 show this help
`;

const flags: FlagSpecs = {
  bootstrap: { type: 'string' },
  acks: { type: 'string' },
  'key-separator': { type: 'string' },
  partition: { type: 'int', min: 0 },
  help: { type: 'boolean' },
};

/** Unacknowledged sends allowed at once; bounds memory on huge inputs. */
const IN_FLIGHT_MAX = 20_000;
/** Per-line errors printed before the rest are only counted. */
const ERRORS_PRINTED_MAX = 20;

export async function produceCommand(argv: string[], io: Io): Promise<number> {
  const p = parseArgs(argv, flags);
  if (p.flags.has('help')) {
    io.out(produceHelp);
    return 0;
  }
  const [topic] = positionals(p, ['TOPIC'], 'sluice produce TOPIC [options]');
  const acks = parseAcks(str(p, 'acks', 'all'));
  const sep = str(p, 'key-separator');
  if (sep === '') throw new UsageError('--key-separator must not be empty');
  const partition = int(p, 'partition');

  const producer = new Producer({ bootstrap: str(p, 'bootstrap', DEFAULT_BOOTSTRAP), acks, profile: 'throughput', clientId: 'sluice-cli-producer' });
  let failed = 0;
  let sent = 0;
  const inFlight = new Set<Promise<unknown>>();
  const report = (msg: string): void => {
    failed++;
    if (failed <= ERRORS_PRINTED_MAX) io.err(`sluice produce: ${msg}\n`);
    else if (failed === ERRORS_PRINTED_MAX + 1) io.err('sluice produce: more errors; only counting from now on\n');
  };
  try {
    const rl = readline.createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      let key: string | null = null;
      let value = line;
      if (sep !== undefined) {
        const i = line.indexOf(sep);
        if (i < 0) {
          report(`line ${lineNo}: no key separator ${JSON.stringify(sep)}; skipped`);
          continue;
        }
        key = line.slice(0, i);
        value = line.slice(i + sep.length);
      }
      const n = lineNo;
      const sendP = producer
        .send({ topic, key, value, ...(partition !== undefined ? { partition } : {}) })
        .then(
          () => {
            sent++;
          },
          (e: Error) => report(`line ${n}: ${e.message}`),
        );
      inFlight.add(sendP);
      void sendP.finally(() => inFlight.delete(sendP));
      if (inFlight.size >= IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await producer.flush();
    await Promise.all(inFlight);
  } finally {
    await producer.close();
  }
  if (failed > 0) {
    io.err(`sluice produce: ${failed} message(s) failed, ${sent} sent\n`);
    return 1;
  }
  return 0;
}
