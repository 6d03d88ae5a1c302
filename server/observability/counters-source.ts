/**
 * A plain counters object (numbers that only grow, kept by the part that counts, e.g. the
 * archive's ArchiveStats of issue 11) exported as Prometheus counters, read at scrape time:
 * each key of `help` is a field of what read() returns, exported as
 * `${prefix}${key in snake case}_total`, so `{ segmentsUploaded }` with prefix
 * `sluice_archive_` is `sluice_archive_segments_uploaded_total`.
 *
 * Invariants: the names are fixed when registered (a key added later to the object is not
 * exported); a value that is not a finite number >= 0 is exported as 0 rather than failing
 * the whole scrape.
 */
import { Counter, type Registry } from 'prom-client';

export interface CountersSource<K extends string> {
  /** Starts with `sluice_` and ends with `_`. */
  prefix: string;
  help: Record<K, string>;
  read(): Record<K, number>;
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function registerCounters<K extends string>(registry: Registry, source: CountersSource<K>): void {
  if (!/^sluice_[a-z0-9_]*_$/.test(source.prefix)) throw new Error(`counter prefix ${JSON.stringify(source.prefix)} must start with sluice_ and end with _`);
  for (const key of Object.keys(source.help) as K[]) {
    new Counter({
      name: `${source.prefix}${snake(key)}_total`,
      help: source.help[key],
      registers: [registry],
      collect() {
        const v = source.read()[key];
        this.reset();
        this.inc(Number.isFinite(v) && v >= 0 ? v : 0);
      },
    });
  }
}
