/**
 * `sluice bench produce|consume|e2e|rebalance|delayed|archive` (and `bench workload|plot`, workload/cli.ts): throughput and latency measurements against a running
 * broker. See benchHelp in options.ts for the flags. With --json the last stdout line is the
 * result as one JSON object; otherwise a short human summary. Exit code 1 on any error.
 */
import { formatError, exitWhenDrained } from '../client/cli/main.ts';
import { benchArchive } from './archive.ts';
import { benchConsume } from './consume.ts';
import { benchDelayed, formatDelayed } from './delayed.ts';
import { benchE2e } from './e2e.ts';
import { benchHelp, parseBenchOptions } from './options.ts';
import { benchProduce } from './produce.ts';
import { benchRebalance } from './rebalance.ts';
import { benchTags } from './tags.ts';
import { formatResult, type BenchResult, type RebalanceResult } from './report.ts';
import { ensureTopic } from './topic.ts';

export async function run(argv: string[]): Promise<number> {
  const args = argv[0] === 'bench' ? argv.slice(1) : argv;
  try {
    // Its own flags, brokers and store (archive.ts).
    if (args[0] === 'archive') return await benchArchive(args.slice(1));
    // The workload driver, its worker processes and plots have their own flags (workload/cli.ts).
    if (args[0] === 'workload' || args[0] === 'plot' || args[0] === 'worker') {
      const wl = await import('./workload/cli.ts');
      if (args[0] === 'worker') {
        wl.runWorker();
        return new Promise<number>(() => {});
      }
      return args[0] === 'plot' ? await wl.plotCommand(args.slice(1)) : await wl.workloadCommand(args.slice(1));
    }
    const opts = parseBenchOptions(args);
    if (opts === null) {
      process.stdout.write(benchHelp);
      return 0;
    }
    if (opts.mode === 'tags') {
      // Its own two fresh topics (tags.ts).
      const t = await benchTags(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(t)}\n` : `${JSON.stringify(t, null, 2)}\n`);
      return 0;
    }
    if (opts.mode === 'delayed') {
      // Its own topics (and maybe its own broker): delayed.ts sets them up.
      const d = await benchDelayed(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(d)}\n` : formatDelayed(d));
      return 0;
    }
    const partitions = await ensureTopic(opts);
    let r: BenchResult | RebalanceResult;
    if (opts.mode === 'produce') r = await benchProduce(opts);
    else if (opts.mode === 'consume') r = await benchConsume(opts, partitions);
    else if (opts.mode === 'rebalance') r = await benchRebalance(opts, partitions);
    else r = await benchE2e(opts, partitions);
    process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : formatResult(r));
    return 0;
  } catch (e) {
    process.stderr.write(formatError('bench', e));
    return 1;
  }
}

export async function main(argv: string[]): Promise<void> {
  await exitWhenDrained(await run(argv));
}
