/**
 * `sluice delayed list|cancel`: the pending delayed messages of a topic (SPEC §6.25) and
 * cancelling them by id (SPEC §6.26), through Admin.listDelayed / cancelDelayed, which ask
 * each partition's leader.
 *
 * list pages through the partitions' entries in release order, LIST_PAGE_MAX per request,
 * until --limit entries were printed or none is left; cancel sends every id given in one call
 * per partition and prints one line per id. Exit code 1 when an id could not be cancelled.
 */
import { LIST_DELAYED_LIMIT_MAX } from '../../protocol/apis/list-delayed.ts';
import { errorInfo } from '../../protocol/errors.ts';
import { Admin, parseDelayedRef, type DelayedCursor, type DelayedMessage } from '../admin.ts';
import { DEFAULT_BOOTSTRAP, bootstrapOf, UsageError, bool, int, parseArgs, str, type FlagSpecs } from './args.ts';
import type { Io } from './io.ts';

export const delayedHelp = `Usage: sluice delayed SUBCOMMAND [options]

Delayed messages (sluice produce --delay / --deliver-at) wait in their partition
until their delivery time. Their id is TOPIC/PARTITION/OFFSET.

Subcommands:
  list TOPIC [--partition P] [--limit N] [--json]
      The pending ones (not yet released, not cancelled) in release order, all
      partitions or partition P, at most N (default 100). One line each, tab-separated:
        ID  DELIVER-AT  REQUESTED-AT  RECORDS  BYTES
      DELIVER-AT is when the broker releases it (ISO, UTC), REQUESTED-AT the time
      the producer asked for (DELIVER-AT is later only when the partition's
      releases had already passed that time). Then, on stderr, how many are pending.
      --json prints one JSON object instead: { pendingCount, partitions, entries }.
  cancel TOPIC PARTITION OFFSET...
  cancel ID...
      Cancels pending delayed messages: they will never be delivered. Prints
      "cancelled ID" or "not cancelled ID: reason" per id; exits 1 if any was not
      (already released, already cancelled, no such id, ...).

Options:
  --bootstrap H:P        broker address(es), comma-separated (default ${DEFAULT_BOOTSTRAP})
  --help                 show this help
`;

const common: FlagSpecs = { bootstrap: { type: 'string' }, help: { type: 'boolean' } };
const listFlags: FlagSpecs = { ...common, partition: { type: 'int', min: 0 }, limit: { type: 'int', min: 1 }, json: { type: 'boolean' } };
const LIMIT_DEFAULT = 100;
/** Entries asked per ListDelayed page. */
const LIST_PAGE_MAX = LIST_DELAYED_LIMIT_MAX;
/** Entries --limit may ask for: a bound on what list holds in memory (the --json output). */
const LIST_LIMIT_MAX = 1_000_000;

export async function delayedCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    io.out(delayedHelp);
    return sub === undefined ? 1 : 0;
  }
  if (sub !== 'list' && sub !== 'cancel') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: list or cancel`);
  const p = parseArgs(rest, sub === 'list' ? listFlags : common);
  if (p.flags.has('help')) {
    io.out(delayedHelp);
    return 0;
  }
  const admin = new Admin({ bootstrap: bootstrapOf(p), clientId: 'sluice-cli-delayed' });
  try {
    if (sub === 'list') {
      if (p.positionals.length !== 1) throw new UsageError('usage: sluice delayed list TOPIC [--partition P] [--limit N] [--json]');
      const limit = int(p, 'limit', LIMIT_DEFAULT);
      if (limit > LIST_LIMIT_MAX) throw new UsageError(`--limit must be <= ${LIST_LIMIT_MAX}`);
      return await list(admin, p.positionals[0]!, int(p, 'partition'), limit, bool(p, 'json'), io);
    }
    return await cancel(admin, p.positionals, io);
  } finally {
    await admin.close();
  }
}

async function list(admin: Admin, topic: string, partition: number | undefined, limit: number, json: boolean, io: Io): Promise<number> {
  const entries: DelayedMessage[] = [];
  let after: DelayedCursor | null = null;
  let pendingCount = 0;
  let partitions: Awaited<ReturnType<Admin['listDelayed']>>['partitions'] = [];
  for (;;) {
    const page = await admin.listDelayed(topic, partition, { limit: Math.min(LIST_PAGE_MAX, limit - entries.length), after });
    // The count of the first page: later pages may see fewer as messages are released meanwhile.
    if (after === null) {
      pendingCount = page.pendingCount;
      partitions = page.partitions;
    }
    for (const e of page.entries) {
      entries.push(e);
      if (!json) io.out(`${e.id}\t${iso(e.deliverAtMs)}\t${iso(e.requestedDeliverAtMs)}\t${e.recordCount}\t${e.sizeBytes}\n`);
    }
    if (page.next === null || entries.length >= limit) break;
    after = page.next;
  }
  if (json) io.out(`${JSON.stringify({ topic, pendingCount, partitions, entries })}\n`);
  else io.err(`${pendingCount} delayed message${pendingCount === 1 ? '' : 's'} pending in ${topic}${partition === undefined ? '' : `/${partition}`}${entries.length < pendingCount ? ` (listed ${entries.length})` : ''}\n`);
  return 0;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

async function cancel(admin: Admin, args: string[], io: Io): Promise<number> {
  const usage = 'usage: sluice delayed cancel TOPIC PARTITION OFFSET... | sluice delayed cancel ID...';
  if (args.length === 0) throw new UsageError(`missing ids; ${usage}`);
  let refs: Array<{ topic: string; partition: number; offset: number }>;
  try {
    if (args.every((a) => a.includes('/'))) {
      refs = args.map((a) => parseDelayedRef(a));
    } else {
      const [topic, partition, ...offsets] = args;
      if (partition === undefined || offsets.length === 0) throw new RangeError(`give TOPIC PARTITION and at least one OFFSET, or ids TOPIC/PARTITION/OFFSET`);
      refs = offsets.map((o) => parseDelayedRef(`${topic}/${partition}/${o}`));
    }
  } catch (e) {
    throw new UsageError(`${(e as Error).message}; ${usage}`);
  }
  const results = await admin.cancelDelayed(refs);
  let failed = 0;
  for (const r of results) {
    if (r.cancelled) {
      io.out(`cancelled ${r.id}\n`);
    } else {
      failed++;
      const name = errorInfo(r.errorCode)?.name ?? `error ${r.errorCode}`;
      io.out(`not cancelled ${r.id}: ${name}${r.errorMessage ? ` (${r.errorMessage})` : ''}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}
