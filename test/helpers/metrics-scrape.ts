/**
 * Scraping a broker's Prometheus endpoint in tests: a free port for --metrics-port (which
 * takes no 0: 0 means off), and the exposition text parsed into `name{labels}` -> value.
 */
import net from 'node:net';

/** A port free right now on 127.0.0.1 (the OS picks it; closed again before returning). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Scrape {
  text: string;
  /** `name{a="x",b="y"}` (labels in the order the broker writes them) or `name` -> value. */
  values: Map<string, number>;
}

export async function scrape(port: number, path = '/metrics'): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${text}`);
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { text, values };
}

/** The value of one series (0 when absent: a counter not yet incremented has no line). */
export function metric(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  return s.values.get(l ? `${name}{${l}}` : name) ?? 0;
}
