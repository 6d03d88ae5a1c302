/**
 * The Prometheus endpoint: GET /metrics over plain HTTP (node:http) on --metrics-host and
 * --metrics-port, answering the broker's registry (metrics-registry.ts). Every other path is
 * 404, every other method 405; 503 while the broker starts. Off unless --metrics-port is set (0 = off).
 *
 * Bounds: at most SCRAPE_CONNECTIONS_MAX connections (more are closed at once), requests
 * whose headers take longer than SCRAPE_HEADERS_TIMEOUT_MS are dropped, idle keep-alive
 * connections close after SCRAPE_KEEP_ALIVE_TIMEOUT_MS; a request body is never read. A
 * failing collector answers 500 with its message and is logged; the broker goes on serving.
 * No authentication: it listens on 127.0.0.1 by default, and README says what 0.0.0.0 exposes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.ts';
import type { BrokerMetrics } from './metrics-registry.ts';

export const SCRAPE_CONNECTIONS_MAX = 64;
export const SCRAPE_HEADERS_TIMEOUT_MS = 10_000;
export const SCRAPE_KEEP_ALIVE_TIMEOUT_MS = 5_000;

export class MetricsServer {
  private server: http.Server | null = null;
  /** Until the broker serves, scrapes get 503: the parts the collectors read do not exist yet. */
  private serving = false;

  constructor(
    private readonly metrics: BrokerMetrics,
    private readonly log: Logger,
  ) {}

  /** Binds host:port (port 0 is never passed: 0 means off to the caller); resolves with the bound port. */
  async start(host: string, port: number): Promise<number> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.maxConnections = SCRAPE_CONNECTIONS_MAX;
    server.headersTimeout = SCRAPE_HEADERS_TIMEOUT_MS;
    server.requestTimeout = SCRAPE_HEADERS_TIMEOUT_MS;
    server.keepAliveTimeout = SCRAPE_KEEP_ALIVE_TIMEOUT_MS;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      // Named as the metrics endpoint's: the broker's own port is another setting.
      server.once('error', (e) => reject(new Error(`metrics endpoint (--metrics-host ${host} --metrics-port ${port}): ${e.message}`)));
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    server.on('error', (e) => this.log.error('metrics endpoint error', { error: e }));
    return (server.address() as AddressInfo).port;
  }

  /** The broker serves: scrapes are answered from now on. */
  serve(): void {
    this.serving = true;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    if (!this.serving) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('the broker is starting\n');
      return;
    }
    this.metrics.scrape().then(
      (text) => {
        res.writeHead(200, { 'content-type': this.metrics.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: unknown) => {
        this.log.warn('metrics scrape failed', { error: e as Error });
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`scrape failed: ${(e as Error)?.message ?? String(e)}\n`);
      },
    );
  }

  /** Stops listening and closes open scrape connections. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server?.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
